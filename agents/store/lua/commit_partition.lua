-- Commit one input partition's share of a batch. Every key is in the partition's slot.
-- Compare the partition's offsets (one per input topic: the fence) with those the batch was
-- computed from; only if none moved, write the buyer states, the new offsets and the outbox.
-- KEYS[1]: the partition's outbox; KEYS[2 .. 1+n]: its offset keys; KEYS[2+n ..]: buyer states.
-- ARGV[1]: msgpack {n, {expected, ...}, {new, ...}, offset_ttl_ms, {{key_index, argv_index,
--          ttl_ms}, ...}, {log_key_index, commit_id, log_length}} (offsets in KEYS order, -1 =
--          never applied; the last part may be left out: no commit log is kept then)
-- ARGV[2]: the outbox entry, '' when the batch changed no agent; ARGV[3..]: buyer state blobs.
-- Returns {0} when committed, {1, key} when the partition moved on (nothing written).
--
-- The outbox being replaced needs no check of its own: it is the one written with the
-- offsets found here, and the worker drained it before computing from those offsets.
-- The input is checked first: buyer states written without their offsets would be folded again.
local p = cmsgpack.unpack(ARGV[1])
check(type(p) == 'table' and is_integer(p[1]) and p[1] >= 0 and #KEYS > p[1], 'no offset count')
local n = p[1]
check(type(p[2]) == 'table' and #p[2] == n and type(p[3]) == 'table' and #p[3] == n, 'offsets')
for i = 1, n do check(is_integer(p[2][i]) and is_integer(p[3][i]), 'offset ' .. i) end
check(is_integer(p[4]) and p[4] > 0, 'offset TTL')
check(type(p[5]) == 'table', 'no buyer states')
for _, s in ipairs(p[5]) do
  check(type(s) == 'table' and is_integer(s[1]) and s[1] > 1 + n and KEYS[s[1]] ~= nil, 'buyer state key')
  check(is_integer(s[2]) and s[2] >= 3 and ARGV[s[2]] ~= nil, 'buyer state value')
  check(is_integer(s[3]) and s[3] > 0, 'buyer state TTL')
end
local log = p[6]
if log ~= nil then
  check(type(log) == 'table' and is_integer(log[1]) and log[1] > 1 + n and KEYS[log[1]] ~= nil, 'commit log key')
  check(type(log[2]) == 'string' and log[2] ~= '' and is_integer(log[3]) and log[3] > 0, 'commit id')
  check_type(KEYS[log[1]], 'list')
end
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[1 + i]) or '-1')
  if current ~= p[2][i] then return {1, KEYS[1 + i]} end
end
for _, s in ipairs(p[5]) do
  redis.call('SET', KEYS[s[1]], ARGV[s[2]], 'PX', s[3])
end
for i = 1, n do
  if p[3][i] >= 0 then redis.call('SET', KEYS[1 + i], p[3][i], 'PX', p[4]) end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', p[4])
end
-- The id of what landed, for a worker whose reply was lost: the offsets alone cannot tell it
-- from another worker's commit of the same records.
if log ~= nil then
  redis.call('LPUSH', KEYS[log[1]], log[2])
  redis.call('LTRIM', KEYS[log[1]], 0, log[3] - 1)
  redis.call('PEXPIRE', KEYS[log[1]], p[4])
end
return {0}
