-- The leader's look at a few shops' agents indexes' change logs (touch_index.lua writes them):
-- for each, the members touched since it last looked, each with its index score (false: it left
-- the index). On a cluster a call looks at one index (one slot); on one server, at several: a
-- round at 1,000 shops sent, and parsed the reply of, a call per shop.
-- KEYS[i]: shop i's index. ARGV[1]: msgpack {{counter, birth}, ...}, one per index in KEYS'
-- order: its log's counter at the last look (-1: never looked), and the log's birth then. One
-- packed argument, not two per index: encoding 2,000 arguments cost the leader ~2 ms a round.
-- A log born since (expired, deleted, Redis lost it) is read whole.
-- Returns msgpack {{counter, whole (1: every member of the index follows), {member, score or
-- false, ...}, birth}, ...}, one per index in KEYS' order.
local known = cmsgpack.unpack(ARGV[1])
check(type(known) == 'table' and #known == #KEYS, 'floor_changes needs a {counter, birth} per index')

local function look(index_key, i)
  local log_key, version_key = change_keys(index_key)
  local last = known[i]
  check(type(last) == 'table' and is_integer(last[1]) and type(last[2]) == 'string',
    index_key .. "'s last look is not {counter, birth}")
  local counter, last_birth = last[1], last[2]
  local state = redis.call('HMGET', version_key, 'n', 'b')
  local version = tonumber(state[1] or '0')
  local birth = state[2] or ''
  if counter < 0 or birth ~= last_birth or version < counter then
    return {version, 1, redis.call('ZRANGE', index_key, 0, -1, 'WITHSCORES'), birth}
  end
  local out = {}
  -- Every touch bumps the counter, and a counter born again has a new birth (read whole above):
  -- a counter that has not moved since the last look under the same birth leaves nothing new.
  if version == counter then return {version, 0, out, birth} end
  local touched = redis.call('ZRANGEBYSCORE', log_key, '(' .. counter, '+inf')
  local scores = read_chunked('ZMSCORE', index_key, touched)
  for j = 1, #touched do
    out[#out + 1] = touched[j]
    out[#out + 1] = scores[j]
  end
  return {version, 0, out, birth}
end

local replies = {}
for i, key in ipairs(KEYS) do replies[i] = look(key, i) end
return cmsgpack.pack(replies)
