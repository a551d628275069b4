-- Everything the leader's round reads of one agent, in one call and one packed reply: its window
-- sums (as window_sums.lua), its waits (count, oldest) and its first-response histogram.
-- KEYS[1]: the agent's outbox markers (`kp:{A}:a`). The other keys are the agent's own, named
-- here from the same tag (`kp:{A}` + suffix), so all are in the slot KEYS[1] names: sending 90
-- key names per agent per second cost the leader more than Redis's reads of them.
-- ARGV[1]: the plan, msgpack {windows, width, {field names}, oldest_allowed_ms,
--   {{kind, first, last, mask, lo, hi, closed}, ...}}, the same for every agent of a shop: each
--   run reads buckets `kind` first..last alike. `closed` reads are business days before today:
--   they add into a vector of their own, not the windows.
-- ARGV[2]: the markers' token the caller holds the closed days' sum for ('' for none).
-- The token is every marker (partition and position): apply_agent.lua sets one in the same
-- script as every counter, wait or histogram it writes, and positions only grow, so an agent
-- whose token is unchanged has the same buckets. Then the closed reads are skipped.
-- Returns msgpack {token, closed (width numbers, or {} when skipped), sums (windows * width),
-- waiting buyers, oldest wait's score (string, or false), its member (or false),
-- {histogram field, count, ...}}.
local plan = cmsgpack.unpack(ARGV[1])
local windows, width, names, oldest_allowed, reads = plan[1], plan[2], plan[3], plan[4], plan[5]
local tag = string.sub(KEYS[1], 1, -3)

local markers = redis.call('HGETALL', KEYS[1])
local pairs_ = {}
for j = 1, #markers, 2 do pairs_[#pairs_ + 1] = markers[j] .. '=' .. markers[j + 1] end
table.sort(pairs_)
local token = table.concat(pairs_, ',')
local skip_closed = token ~= '' and token == ARGV[2]

local index = {}
for i = 1, width do index[names[i]] = i end
local sums, closed = {}, {}
for i = 1, windows * width do sums[i] = 0 end
for i = 1, width do closed[i] = 0 end
for _, run in ipairs(reads) do
  local kind, mask, lo, hi, is_closed = run[1], run[4], run[5], run[6], run[7] == 1
  for ident = run[2], (is_closed and skip_closed) and run[2] - 1 or run[3] do
    local flat = redis.call('HGETALL', tag .. ':' .. kind .. ':' .. string.format('%d', ident))
    for j = 1, #flat, 2 do
      local field = flat[j]
      local slot
      if lo < 0 then
        slot = index[field]
      else
        local name, sec = string.match(field, SECOND_FIELD)
        sec = tonumber(sec)
        if name and sec >= lo and sec <= hi then slot = index[name] end
      end
      if slot then
        local value = tonumber(flat[j + 1])
        if is_closed then
          closed[slot] = closed[slot] + value
        else
          for w = 0, windows - 1 do
            if bit.band(mask, bit.lshift(1, w)) ~= 0 then
              sums[w * width + slot] = sums[w * width + slot] + value
            end
          end
        end
      end
    end
  end
end
if skip_closed then closed = {} end

local waiting = tag .. ':w'
local count = redis.call('ZCOUNT', waiting, oldest_allowed, '+inf')
local oldest = redis.call('ZRANGEBYSCORE', waiting, oldest_allowed, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local histogram = redis.call('HGETALL', tag .. ':h')
return cmsgpack.pack({token, closed, sums, count, oldest[2] or false, oldest[1] or false, histogram})
