/**
 * Idempotency keys (core/idempotency.ts). An entry is JSON: `{fp, id}` once the request's record
 * exists, `{fp, id, owner, lease}` while a request holds the key (lease: Redis milliseconds). The
 * lease is read against Redis's clock, so processes on machines whose clocks disagree agree on it.
 */

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * ARGV: fp, proposed id, owner, lease ms, ttl seconds. Answers {outcome, id, wait ms}:
 * `claimed` (new, under the proposed id), `resumed` (a lapsed lease taken over, under its id),
 * `done` (the id of the record made), `busy` (held; wait ms left on its lease), `mismatch`.
 */
export const CLAIM = `${NOW}
local function hold(id)
  redis.call('SET', KEYS[1], cjson.encode({fp = ARGV[1], id = id, owner = ARGV[3], lease = now + tonumber(ARGV[4])}), 'EX', ARGV[5])
end
local raw = redis.call('GET', KEYS[1])
if not raw then hold(ARGV[2]) return {'claimed', ARGV[2], 0} end
local e = cjson.decode(raw)
if e.fp ~= ARGV[1] then return {'mismatch', '', 0} end
local id = e.id
if id == cjson.null or id == nil then
  -- An entry written before leases existed, held by a request that never finished: lapsed.
  hold(ARGV[2]) return {'resumed', ARGV[2], 0}
end
if e.lease == nil then return {'done', id, 0} end
-- This very claim, sent again by a client that reconnected before its answer came.
if e.owner == ARGV[3] then return {'claimed', id, 0} end
local left = tonumber(e.lease) - now
if left > 0 then return {'busy', id, left} end
hold(id)
return {'resumed', id, 0}`;

/** ARGV: owner, lease ms. Extends the lease while `owner` still holds it; answers 1 or 0. */
export const RENEW_CLAIM = `${NOW}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.lease == nil or e.owner ~= ARGV[1] then return 0 end
e.lease = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(e), 'KEEPTTL')
return 1`;

/** ARGV: owner. Deletes the entry while `owner` still holds it (its request failed before a record). */
export const RELEASE_CLAIM = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.lease == nil or e.owner ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

/** ARGV: id. Deletes the entry if it answers record `id` (which is gone): the key starts afresh. */
export const FORGET = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local e = cjson.decode(raw)
if e.lease ~= nil or e.id ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;
