-- Sum an agent's cohort buckets into per-window vectors in one server-side pass.
-- KEYS: bucket hashes. ARGV: windows, width, then width field names, then per key: mask lo hi.
-- Day/minute hashes hold `field -> n`; second hashes hold `field:sec -> n` (SECOND_FIELD in
-- prelude.lua), and only seconds lo..hi count (lo = -1 means the whole hash).
-- Returns windows*width integers.
local windows = tonumber(ARGV[1])
local width = tonumber(ARGV[2])
local index = {}
for i = 1, width do index[ARGV[2 + i]] = i end
local base = 2 + width
local sums = {}
for i = 1, windows * width do sums[i] = 0 end
for k = 1, #KEYS do
  local offsets = window_offsets(tonumber(ARGV[base + 3 * (k - 1) + 1]), windows, width)
  local lo = tonumber(ARGV[base + 3 * (k - 1) + 2])
  local hi = tonumber(ARGV[base + 3 * (k - 1) + 3])
  local flat = redis.call('HGETALL', KEYS[k])
  for j = 1, #flat, 2 do
    local slot = bucket_slot(flat[j], index, lo, hi)
    if slot then
      local value = tonumber(flat[j + 1])
      for o = 1, #offsets do
        local at = offsets[o] + slot
        sums[at] = sums[at] + value
      end
    end
  end
end
return sums
