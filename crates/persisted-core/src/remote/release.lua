-- The lease is not data: kept out of the AOF and replication (a restart
-- or failover drops it; every commit is still fenced by the version).
redis.set_repl(redis.REPL_NONE)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
