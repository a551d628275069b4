-- A new leader's epoch: one more than any before it. KEYS[1]: the firing-alerts hash. ARGV: ttl_ms.
check_integer_arg(ARGV[1], 'TTL')
check_type(KEYS[1], 'hash')
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return epoch
