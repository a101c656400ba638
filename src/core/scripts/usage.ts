/**
 * Records one call's usage once: KEYS the day's recorded call ids (a hash), day, hour, batch,
 * month, then the two previous days' call ids; ARGV the call id, the TTLs of the call ids, of
 * the day (and month), the hour and the batch, the day field's prefix (hour|dimensions|), the
 * hour field's (minute|dimensions|), whether the call
 * served a batch ('1'/'0'), then pairs of metric and whole number. Returns 1 when recorded, 0
 * when the call was recorded before (a resent command, a batch's answers read again). Call ids
 * share a hash per tenant and day (not a key each): a key per call would pile a tenant's calls
 * on one cluster master.
 */
export const RECORD_USAGE = `
local call = ARGV[1]
for _, k in ipairs({KEYS[1], KEYS[6], KEYS[7]}) do
  if redis.call('HEXISTS', k, call) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], call, '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
local batch = ARGV[8] == '1'
for i = 9, #ARGV, 2 do
  local metric, n = ARGV[i], tonumber(ARGV[i + 1])
  if n ~= 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[6] .. metric, n)
    redis.call('HINCRBY', KEYS[3], ARGV[7] .. metric, n)
    if batch then redis.call('HINCRBY', KEYS[4], metric, n) end
    if string.sub(metric, 1, 5) == 'cost_' then redis.call('INCRBY', KEYS[5], n) end
  end
end
redis.call('EXPIRE', KEYS[5], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
if batch then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return 1
`;
