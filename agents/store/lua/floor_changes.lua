-- The leader's look at one index's change log (touch_index.lua writes it): the members touched
-- since it last looked, each with its index score (false: it left the index).
-- KEYS[1]: the index. ARGV[1]: the log's counter at the last look (-1: never looked).
-- Returns msgpack {counter, whole (1: every member of the index follows, the log restarted or
-- was never read), {member, score or false, ...}}.
local log_key, version_key = change_keys(KEYS[1])
local known = tonumber(ARGV[1])
local version = tonumber(redis.call('GET', version_key) or '0')
local out = {}
if known < 0 or version < known then
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  return cmsgpack.pack({version, 1, all})
end
local touched = redis.call('ZRANGEBYSCORE', log_key, '(' .. known, '+inf')
for _, member in ipairs(touched) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], member) or false
end
return cmsgpack.pack({version, 0, out})
