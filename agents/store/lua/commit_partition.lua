-- Commit one input partition's share of a batch. Every key is in the partition's slot.
-- Compare the partition's offsets (one per input topic: the fence) with those the batch was
-- computed from; only if none moved, write the buyer states, the new offsets and the outbox.
-- KEYS[1]: the partition's outbox; KEYS[2 .. 1+n]: its offset keys; KEYS[2+n ..]: buyer states.
-- ARGV[1]: msgpack {n, {expected, ...}, {new, ...}, offset_ttl_ms, {{key_index, argv_index,
--          ttl_ms}, ...}} (offsets in KEYS order, -1 = never applied)
-- ARGV[2]: the outbox entry, '' when the batch changed no agent; ARGV[3..]: buyer state blobs.
-- Returns {0} when committed, {1, key} when the partition moved on (nothing written).
--
-- The outbox being replaced needs no check of its own: it is the one written with the
-- offsets found here, and the worker drained it before computing from those offsets.
local p = cmsgpack.unpack(ARGV[1])
local n = p[1]
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
return {0}
