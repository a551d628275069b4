-- Apply one agent's status events (kefu.agents), each at most once. Both keys are in the agent's slot.
-- KEYS[1]: the change points (sorted set: score = event ts, member = `<offset, 20 digits>|<status>|<event_id>`,
--          so points of the same ms keep their Kafka order); KEYS[2]: the kept points' event ids
--          (hash: event_id -> `<partition>:<offset>` of the record that applied it).
-- ARGV[1]: kept_from_ms: points before it are dropped, all but the newest of them (the status
--          at that moment); ARGV[2]: the keys' TTL (ms); ARGV[3..]: ts, member, record, per event.
-- Returns one outcome per event: `applied` (also the same record applied again: a retry or a
-- redelivery), `duplicate` (an event id already kept, from another record) or `late` (dropped
-- at once: older than the kept history and than its newest point before it).
--
-- Every point is a member named by its event, so applying the same events again writes nothing
-- new: that, not a marker, is what makes a batch safe to repeat (docs/redis-layout.md).
local OFFSET_DIGITS = 20

-- The event id of a member: everything after the `|` that ends its status.
local function event_id(member)
  local bar = string.find(member, '|', OFFSET_DIGITS + 2, true)
  if bar == nil or bar == #member then return nil end
  return string.sub(member, bar + 1)
end

local function is_member(member)
  return string.find(member, '^%d+|[a-z]+|') == 1 and string.sub(member, OFFSET_DIGITS + 1, OFFSET_DIGITS + 1) == '|'
    and event_id(member) ~= nil
end
check_integer_arg(ARGV[1], 'kept_from_ms')
check_integer_arg(ARGV[2], 'TTL')
check(#ARGV >= 2 and (#ARGV - 2) % 3 == 0, 'events are not {ts, member, record} triples')
for i = 3, #ARGV, 3 do
  check_integer_arg(ARGV[i], 'ts')
  check(is_member(ARGV[i + 1]), 'member ' .. ARGV[i + 1])
  check(string.find(ARGV[i + 2], '^%d+:%d+$') ~= nil, 'record ' .. ARGV[i + 2])
end
check_type(KEYS[1], 'zset')
check_type(KEYS[2], 'hash')

local outcomes = {}
for i = 3, #ARGV, 3 do
  local member, record = ARGV[i + 1], ARGV[i + 2]
  local id = event_id(member)
  local seen = redis.call('HGET', KEYS[2], id)
  if not seen then
    redis.call('ZADD', KEYS[1], ARGV[i], member)
    redis.call('HSET', KEYS[2], id, record)
    outcomes[#outcomes + 1] = 'applied'
  elseif seen == record then
    outcomes[#outcomes + 1] = 'applied'
  else
    outcomes[#outcomes + 1] = 'duplicate'
  end
end

local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for j = 1, #old - 1 do
  redis.call('ZREM', KEYS[1], old[j])
  redis.call('HDEL', KEYS[2], event_id(old[j]))
end
for i = 3, #ARGV, 3 do
  local n = (i - 3) / 3 + 1
  if outcomes[n] == 'applied' and not redis.call('ZSCORE', KEYS[1], ARGV[i + 1]) then
    outcomes[n] = 'late'
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return outcomes
