-- The leader's look at one index's change log (touch_index.lua writes it): the members touched
-- since it last looked, each with its index score (false: it left the index).
-- KEYS[1]: the index. ARGV[1]: the log's counter at the last look (-1: never looked); ARGV[2]:
-- the log's birth then. A log born since (expired, deleted, Redis lost it) is read whole.
-- Returns msgpack {counter, whole (1: every member of the index follows), {member, score or
-- false, ...}, birth}.
local log_key, version_key = change_keys(KEYS[1])
local known = tonumber(ARGV[1])
local state = redis.call('HMGET', version_key, 'n', 'b')
local version = tonumber(state[1] or '0')
local birth = state[2] or ''
local out = {}
if known < 0 or birth ~= ARGV[2] or version < known then
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  return cmsgpack.pack({version, 1, all, birth})
end
local touched = redis.call('ZRANGEBYSCORE', log_key, '(' .. known, '+inf')
for _, member in ipairs(touched) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], member) or false
end
return cmsgpack.pack({version, 0, out, birth})
