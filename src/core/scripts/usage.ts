/**
 * Records one call's usage once: KEYS call, day, hour, batch, month; ARGV the four TTLs (call, day,
 * hour, batch; the month's is the day's), the day field's prefix (hour|dimensions|), the hour field's (minute|dimensions|), whether
 * the call served a batch ('1'/'0'), then pairs of metric and whole number. Returns 1 when recorded,
 * 0 when the call was recorded before (a resent command, a batch's answers read again).
 */
export const RECORD_USAGE = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local batch = ARGV[7] == '1'
for i = 8, #ARGV, 2 do
  local metric, n = ARGV[i], tonumber(ARGV[i + 1])
  if n ~= 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[5] .. metric, n)
    redis.call('HINCRBY', KEYS[3], ARGV[6] .. metric, n)
    if batch then redis.call('HINCRBY', KEYS[4], metric, n) end
    if string.sub(metric, 1, 5) == 'cost_' then redis.call('INCRBY', KEYS[5], n) end
  end
end
redis.call('EXPIRE', KEYS[5], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[3])
if batch then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 1
`;
