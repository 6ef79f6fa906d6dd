-- The lease is not data: kept out of the AOF and replication (a restart
-- or failover drops it; every commit is still fenced by the version).
redis.set_repl(redis.REPL_NONE)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  -- Wake one waiter (it blocks on this list instead of polling).
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
  return 1
end
return 0
