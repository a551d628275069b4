-- An agent's day buckets as integer vectors, in one server-side pass (a report reads hundreds).
-- KEYS: day hashes (one agent, so one slot). ARGV: the field names, in vector order.
-- Returns #KEYS * #ARGV integers, key by key, each field's count (0 when absent), packed with
-- msgpack into one string: a month of an agent is ~900 numbers, and one bulk reply parses in
-- microseconds where 900 RESP integers cost a client-side read each.
local index = {}
for i = 1, #ARGV do index[ARGV[i]] = i end
local width = #ARGV
local out = {}
for i = 1, #KEYS * width do out[i] = 0 end
for k = 1, #KEYS do
  local flat = redis.call('HGETALL', KEYS[k])
  local base = (k - 1) * width
  for j = 1, #flat, 2 do
    local slot = index[flat[j]]
    if slot then out[base + slot] = tonumber(flat[j + 1]) end
  end
end
return cmsgpack.pack(out)
