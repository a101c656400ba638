/** Admission of Gemini calls (see core/admission.ts): admit, succeeded, refused. */

export const ADMIT = `
local now = tonumber(ARGV[1])
local lane = ARGV[2]
local tenant = ARGV[3]
local job = ARGV[4]
local tokens = tonumber(ARGV[5])
local cfgRate = tonumber(ARGV[6])
local tpm = tonumber(ARGV[7])
local horizon = tonumber(ARGV[8])
local h = KEYS[1]
local s = redis.call('HMGET', h, 'rate', 'tat', 'ttat', 'paused', 'tpm')
local rate = cfgRate
if rate <= 0 then rate = tonumber(s[1]) end
if tpm <= 0 then tpm = tonumber(s[5]) or 0 end
local interval = 0
if rate then interval = 1000 / rate end
local paused = tonumber(s[4]) or 0
if paused > now then return {0, paused - now, redis.call('ZCARD', KEYS[4]), interval, 1} end
if not rate and tpm <= 0 then return {2, 0, 0, 0, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 120000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 120000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 2000)
redis.call('ZADD', KEYS[3], now, tenant)
local allowance = 0
if lane == 'i' then allowance = horizon end
local delay = -1e18
local tat = now
if rate then
  tat = math.max(tonumber(s[2]) or now, now)
  delay = tat - 2 * interval - now
end
local Tt = 0
local ttat = now
if tpm > 0 then
  Tt = 60000 / tpm
  ttat = math.max(tonumber(s[3]) or now, now)
  -- one second of tokens may go at once; a prompt larger than that waits for the bucket to be full
  local tdelay = ttat + math.min(tokens * Tt, 1000) - 1000 - now
  if tdelay > delay then delay = tdelay end
end
-- a refused call comes back once its turn could be near, spread over the time its tenant's
-- waiting calls need (answered: wait, the tenant's waiting calls, interval, paused flag)
local function refuse(ms)
  redis.call('ZADD', KEYS[2], now, job)
  redis.call('ZADD', KEYS[4], now, job)
  redis.call('HSET', h, 'w:' .. tenant, now)
  return {0, math.max(ms, 1), redis.call('ZCARD', KEYS[4]), interval, 0}
end
if delay > allowance then return refuse(delay - allowance) end
-- contended: calls are waiting, or this one had to wait for its turn
local contended = delay > 0 or redis.call('ZCARD', KEYS[2]) > 0
if contended then
  local n = redis.call('ZCARD', KEYS[3])
  local vt = math.max(tonumber(redis.call('HGET', h, 'v:' .. tenant) or now), now)
  if n > 1 and vt - now > horizon then
    -- ahead of its share: yield if another tenant has a call waiting
    for _, t in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
      if t ~= tenant and (tonumber(redis.call('HGET', h, 'w:' .. t) or 0) > now - 2000) then
        return refuse(math.max(vt - now - horizon, interval))
      end
    end
  end
  redis.call('HSET', h, 'v:' .. tenant, math.min(vt + n * interval, now + 2 * horizon))
end
redis.call('ZREM', KEYS[2], job)
redis.call('ZREM', KEYS[4], job)
if rate then redis.call('HSET', h, 'tat', tat + interval) end
if tpm > 0 then redis.call('HSET', h, 'ttat', ttat + tokens * Tt) end
redis.call('PEXPIRE', h, 7 * 86400000)
local flag = 0
if contended then flag = 1 end
return {1, math.max(delay, 0), 0, interval, flag}`;

/**
 * A call succeeded. A learned rate grows while calls wait for it, by 0.05 a second per call, which
 * at `rate` calls a second is 5% a second, up to near the rate last refused, and a tenth of that
 * beyond it. An estimate of input tokens is corrected by the count Gemini reported.
 */
export const SUCCEEDED = `
local now = tonumber(ARGV[1])
local cfgRate = tonumber(ARGV[2])
local extraTokens = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local contended = ARGV[5] == '1'
local h = KEYS[1]
if tpm <= 0 then tpm = tonumber(redis.call('HGET', h, 'tpm') or 0) end
if tpm > 0 and extraTokens ~= 0 then
  local ttat = tonumber(redis.call('HGET', h, 'ttat') or now)
  redis.call('HSET', h, 'ttat', math.max(ttat + extraTokens * 60000 / tpm, now - 1000))
end
if cfgRate > 0 or not contended then return 0 end
local rate = tonumber(redis.call('HGET', h, 'rate'))
if not rate then return 0 end
local ceiling = tonumber(redis.call('HGET', h, 'ceiling') or 0)
local step = 0.05
if ceiling > 0 and rate >= ceiling * 0.95 then step = 0.005 end
redis.call('HSET', h, 'rate', rate + step)
return 1`;

/**
 * A call was refused for quota. The model pauses for the upstream's delay. A limit the refusal
 * states (per minute) is learned as it is, less a margin; otherwise a learned rate is cut (once
 * per pause: calls admitted before the cut are refused too and say nothing new), starting, the
 * first time, from the success rate observed over the last seconds.
 */
export const REFUSED = `
local now = tonumber(ARGV[1])
local pauseMs = tonumber(ARGV[2])
local cfgRate = tonumber(ARGV[3])
local observed = tonumber(ARGV[4])
local statedRpm = tonumber(ARGV[5])
local statedTpm = tonumber(ARGV[6])
local cfgTpm = tonumber(ARGV[7])
local margin = tonumber(ARGV[8])
local h = KEYS[1]
local s = redis.call('HMGET', h, 'rate', 'paused', 'cut')
local paused = math.max(tonumber(s[2]) or 0, now + pauseMs)
redis.call('HSET', h, 'paused', paused, 'tat', paused, 'ttat', paused)
redis.call('PEXPIRE', h, 7 * 86400000)
if cfgTpm <= 0 and statedTpm > 0 then redis.call('HSET', h, 'tpm', statedTpm * margin) end
if cfgRate > 0 then return 0 end
if statedRpm > 0 then
  redis.call('HSET', h, 'rate', statedRpm / 60 * margin, 'ceiling', statedRpm / 60, 'cut', now)
  return 1
end
if statedTpm > 0 then return 0 end
local cut = tonumber(s[3]) or 0
if cut > now - pauseMs then return 0 end
-- the ceiling is the rate that was just refused; the first time, the success rate seen before it
local rate = tonumber(s[1])
if not rate then
  -- too few calls seen to say what rate held: only the pause, until there are
  if observed <= 0 then return 0 end
  redis.call('HSET', h, 'rate', observed * 0.9, 'ceiling', observed, 'cut', now)
else
  redis.call('HSET', h, 'rate', math.max(rate * 0.8, 0.2), 'ceiling', rate, 'cut', now)
end
return 1`;
