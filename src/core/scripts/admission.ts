/** Admission of Gemini calls (see core/admission.ts): admit, succeeded, refused. */

/** A learned rate grows to at most this much over the calls admitted in the last second. */
const USE_MARGIN = 1.25;

/**
 * Calls admitted per second, across every worker: 'uc' in second 'us', 'up' in the one before. A
 * learned rate grows only up to a margin over what is used (an application-limited rate says
 * nothing of the quota: a worker starved of CPU or of work would otherwise let it grow far past the
 * quota, then storm it once the calls can go).
 */
const COUNT_USE = `
local function countUse(h, now, us, uc)
  local sec = math.floor(now / 1000)
  if us == sec then
    redis.call('HINCRBY', h, 'uc', 1)
  elseif us == sec - 1 then
    redis.call('HSET', h, 'us', sec, 'up', uc, 'uc', 1)
  else
    redis.call('HSET', h, 'us', sec, 'up', 0, 'uc', 1)
  end
end
`;

export const ADMIT = `${COUNT_USE}
local now = tonumber(ARGV[1])
local lane = ARGV[2]
local tenant = ARGV[3]
local job = ARGV[4]
local tokens = tonumber(ARGV[5])
local cfgRate = tonumber(ARGV[6])
local tpm = tonumber(ARGV[7])
local horizon = tonumber(ARGV[8])
local h = KEYS[1]
local s = redis.call('HMGET', h, 'rate', 'tat', 'ttat', 'paused', 'tpm', 'us', 'uc')
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
countUse(h, now, tonumber(s[6]) or 0, tonumber(s[7]) or 0)
-- flag: 1 contended (calls wait, or this one did); +2 the rate binds (this turn came as the schedule
-- filled up: within one interval of the burst), the only time that growing it is warranted
local flag = 0
if contended then flag = 1 end
if rate and delay > -interval then flag = flag + 2 end
return {1, math.max(delay, 0), 0, interval, flag}`;

/**
 * A call succeeded while calls waited for their turns: a learned rate grows, in time rather than per
 * call (so it grows alike at any rate). Below the rate last refused (the ceiling) it recovers
 * quickly, a tenth of the ceiling a second, up to just under it; from there it probes, slowly at
 * first and faster the longer no refusal comes (5% a second, plus 6% for every second spent
 * probing), so a quota that stays put is met again gently and one that was raised is found within
 * seconds (a doubled quota in about four, a quadrupled one in about six). A stated limit caps the
 * growth while it is fresh (STATED_CAP_MS): a raised quota states itself only when it refuses. An
 * estimate of input tokens is corrected by the count Gemini reported.
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
local s = redis.call('HMGET', h, 'rate', 'ceiling', 'grown', 'probing', 'cap', 'capUntil', 'us', 'uc', 'up')
local rate = tonumber(s[1])
if not rate then return 0 end
local ceiling = tonumber(s[2]) or rate
local dt = math.min(math.max(now - (tonumber(s[3]) or now), 0), 1000) / 1000
redis.call('HSET', h, 'grown', now)
if dt <= 0 then return 0 end
if rate < ceiling * 0.97 then
  rate = math.min(rate + ceiling * 0.1 * dt, ceiling * 0.97)
  redis.call('HDEL', h, 'probing')
else
  local since = tonumber(s[4])
  if not since then since = now; redis.call('HSET', h, 'probing', now) end
  rate = rate * (1 + (0.05 + 0.06 * (now - since) / 1000) * dt)
end
local cap = tonumber(s[5]) or 0
if cap > 0 and (tonumber(s[6]) or 0) > now and rate >= cap then
  -- held at a fresh stated limit: probing beyond it starts, gently, when the limit lapses
  rate = cap
  redis.call('HDEL', h, 'probing')
end
-- the calls admitted in the last whole second: growth stops at USE_MARGIN above them
local us = tonumber(s[7]) or 0
local used = 0
if us == math.floor(now / 1000) then used = tonumber(s[9]) or 0 elseif us == math.floor(now / 1000) - 1 then used = tonumber(s[8]) or 0 end
local old = tonumber(s[1])
rate = math.min(rate, math.max(old, used * ${USE_MARGIN} + 1))
redis.call('HSET', h, 'rate', rate)
return 1`;

/**
 * A call was refused for quota. The model pauses for the upstream's delay. A learned rate is cut
 * once per refusal episode (calls admitted before the cut are refused too and say nothing new): to
 * BACKOFF of the rate being admitted, which is the learned rate, or at a first refusal the rate this
 * project's workers were admitting (measured by the caller, `admitted`), or the limit it states. A stated per-minute limit
 * (QuotaFailure's quotaValue) is an upper bound, not the answer, for a while: a first refusal that
 * states it starts there (less a margin); a later one below it says that someone else spends part
 * of the quota, and cuts as an unstated one does.
 */
export const REFUSED = `
local now = tonumber(ARGV[1])
local pauseMs = tonumber(ARGV[2])
local cfgRate = tonumber(ARGV[3])
local admitted = tonumber(ARGV[4])
local statedRpm = tonumber(ARGV[5])
local statedTpm = tonumber(ARGV[6])
local cfgTpm = tonumber(ARGV[7])
local margin = tonumber(ARGV[8])
local backoff = tonumber(ARGV[9])
local capMs = tonumber(ARGV[10])
local accepted = tonumber(ARGV[11])
local admittedAt = tonumber(ARGV[12])
local h = KEYS[1]
local s = redis.call('HMGET', h, 'rate', 'paused', 'cut')
local paused = math.max(tonumber(s[2]) or 0, now + pauseMs)
redis.call('HSET', h, 'paused', paused, 'tat', paused, 'ttat', paused)
redis.call('PEXPIRE', h, 7 * 86400000)
if cfgTpm <= 0 and statedTpm > 0 then redis.call('HSET', h, 'tpm', statedTpm * margin) end
if cfgRate > 0 then return 0 end
local cap = 0
if statedRpm > 0 then
  cap = statedRpm / 60 * margin
  redis.call('HSET', h, 'cap', cap, 'capUntil', now + capMs)
end
local cut = tonumber(s[3]) or 0
-- one episode: a call admitted before the last cut was refused at the old rate, and says nothing new
if cut > now - math.max(pauseMs, 500) or cut >= admittedAt then return 0 end
local rate = tonumber(s[1])
local from = rate
if not from then from = math.max(admitted, accepted) end
-- admitted far above what got through (pauses did the throttling: the quota is lower, or shared):
-- the accepted rate is the better measure of what the upstream allows
if from and accepted > 0 and accepted * 1.1 < from then from = accepted * 1.1 end
if not from or from <= 0 then
  if cap <= 0 then return 0 end
  from = cap / backoff
end
local target = from * backoff
local ceiling = from
if cap > 0 then
  -- a refusal that states its limit: recover quickly to just under it, not to the rate refused
  target = math.min(target, cap)
  ceiling = math.min(ceiling, statedRpm / 60)
end
if not rate then
  -- a first 429 ends the slow start, whose burst overstates the rate: halve it, and probe from there
  target = from * 0.5
  if cap > 0 then target = cap end
  ceiling = target
end
redis.call('HSET', h, 'rate', math.max(target, 0.1), 'ceiling', ceiling, 'cut', now)
redis.call('HDEL', h, 'probing')
return 1`;
