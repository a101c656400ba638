/** Record writes: create, update while it exists, and status transitions; each publishes on the record's channel. */

// Each write is one script (one round trip); a change also publishes on its channel, ARGV[1].
const PUBLISH_STATUS = `redis.call('PUBLISH', ARGV[1], redis.call('HGET', KEYS[1], 'status') or '1')`;

/**
 * HSET a new record with its TTL, ARGV[1], unless one exists under its id: two requests that take
 * over one Idempotency-Key make one record. ARGV[2] is this creation's token, kept in the record's
 * `_creation` field: a create that a reconnecting client sends again (its first answer lost) finds
 * its own token and still answers 1; another's answers 0. The index entries are written before the
 * record, by separate commands: on a cluster they live in other slots. Nothing waits on a record
 * that did not exist, so a creation publishes nothing.
 */
export const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGET', KEYS[1], '_creation') == ARGV[2] and 1 or 0
end
redis.call('HSET', KEYS[1], '_creation', ARGV[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

/** HSET only while the record exists. */
export const UPDATE_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
${PUBLISH_STATUS}
return 1`;

/**
 * HSET only when the record's status is one of ARGV[2] (a JSON list). ARGV[3] = '1' answers
 * the whole record after the change (or an empty list when it did not apply), else 1 or 0.
 * ARGV[4] = n: the n field/value pairs after it are written only where the field is unset or
 * null (a first start time); the patch follows them.
 */
export const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return ARGV[3] == '1' and {} or 0 end
local allowed = cjson.decode(ARGV[2])
for _, s in ipairs(allowed) do
  if cjson.encode(s) == cur then
    local n = tonumber(ARGV[4])
    for i = 5, 4 + 2 * n, 2 do
      local v = redis.call('HGET', KEYS[1], ARGV[i])
      if not v or v == 'null' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    end
    if #ARGV > 4 + 2 * n then redis.call('HSET', KEYS[1], unpack(ARGV, 5 + 2 * n)) end
    ${PUBLISH_STATUS}
    if ARGV[3] == '1' then return redis.call('HGETALL', KEYS[1]) end
    return 1
  end
end
return ARGV[3] == '1' and {} or 0`;
