-- Grants only when every key is free or already holds our value.
for _, key in ipairs(KEYS) do
  local current = redis.call("GET", key)
  if current and current ~= ARGV[1] then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call("SET", key, ARGV[1], "PX", ARGV[2])
end
return 1
