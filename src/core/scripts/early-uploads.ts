/** An early upload's state (domain/early-uploads.ts): a sender's record of its session, written only while the request is on. */

/**
 * KEYS[1] the state; ARGV url, offset, mime, ttl seconds. Writes the session only when the state
 * exists and says receiving or accepted (a state deleted is never written back).
 * Answers the outcome found ('' when there is no state).
 */
export const RECORD_SESSION = `
local outcome = redis.call('HGET', KEYS[1], 'outcome')
if not outcome then return '' end
if outcome == 'receiving' or outcome == 'accepted' then
  redis.call('HSET', KEYS[1], 'url', ARGV[1], 'offset', ARGV[2], 'mime', ARGV[3])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
return outcome
`;
