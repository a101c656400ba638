/** A batch's line counters: count a line once, raise the handed-out mark. */

/** Counts a line once (SETBIT answers the bit's old value); answers the counters after, and 1 if this call counted it. */
export const MARK_LINE = `
local new = redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 0
if new then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
local state = redis.call('HMGET', KEYS[2], 'fed', 'completed', 'failed')
state[4] = new and 1 or 0
return state`;

/** Raises `fed` to ARGV[1] if it is lower; answers the value it holds after. */
export const RAISE_FED = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'fed') or '0')
local want = tonumber(ARGV[1])
if want > cur then redis.call('HSET', KEYS[1], 'fed', want) return want end
return cur`;
