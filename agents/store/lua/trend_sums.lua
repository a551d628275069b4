-- One agent's last hour minute by minute, and the hour before, in one server-side pass.
-- KEYS: first the second buckets of the minutes the last hour touches, then the minute buckets
-- of the hour before (one agent, so one slot).
-- ARGV: now (epoch second), the number of second-bucket keys, then each of those keys' minute,
-- then the field names wanted (W of them).
-- Second buckets hold `field:sec -> n` (SECOND_FIELD in prelude.lua): a count at second t
-- lands in point 59 - (now - t) // 60, so point 59 is (now - 60 s, now] and the 60 points add
-- up to the `1h` window exactly.
-- Minute buckets hold `field -> n` and add up into point 60, the hour before.
-- Returns 61 * W integers, point by point, packed with msgpack into one string.
local now = tonumber(ARGV[1])
local seconds_keys = tonumber(ARGV[2])
local first_field = 3 + seconds_keys
local index = {}
local width = 0
for i = first_field, #ARGV do
  width = width + 1
  index[ARGV[i]] = width
end
local out = {}
for i = 1, 61 * width do out[i] = 0 end
for k = 1, #KEYS do
  local flat = redis.call('HGETALL', KEYS[k])
  if k <= seconds_keys then
    local minute = tonumber(ARGV[2 + k])
    for j = 1, #flat, 2 do
      local name, sec = string.match(flat[j], SECOND_FIELD)
      local slot = name and index[name]
      if slot then
        local age = now - (minute * 60 + tonumber(sec))
        if age >= 0 and age < 3600 then
          local point = 59 - math.floor(age / 60)
          out[point * width + slot] = out[point * width + slot] + tonumber(flat[j + 1])
        end
      end
    end
  else
    for j = 1, #flat, 2 do
      local slot = index[flat[j]]
      if slot then out[60 * width + slot] = out[60 * width + slot] + tonumber(flat[j + 1]) end
    end
  end
end
return cmsgpack.pack(out)
