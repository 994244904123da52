-- Which check a request's client key gets, and what the check reads (llmagg.gateway_keys renders this
-- with its tables; the credentials service serves it to every Envoy by xDS). Nothing a client sends
-- may say who it is: the identity headers are removed first.
--   admin paths (and Envoy's own APIs), keys stored before Envoy could check them (LEGACY_IDS) and
--   key ids this table does not know (KNOWN_IDS: hashed or revoked; a key created a moment ago on a
--   credentials replica whose change has not reached this table yet):
--     ext_authz asks the credentials service, as it did for every request before;
--   every other request: the basic_auth filter after this one checks the key against its {SHA}
--     hash: `Authorization: Bearer sk-llmagg-<id>-<secret>` becomes `Basic <id>:<the whole key>` in
--     x-llmagg-basic (a key of another shape is the environment's admin key, user ENV_ADMIN_ID),
--     and `authorization` goes (it must never reach a provider).
-- x-llmagg-auth says which check was chosen (the matchers and local replies read it).

local function starts_with_any(path, prefixes)
  for _, prefix in ipairs(prefixes) do
    if string.sub(path, 1, #prefix) == prefix then
      return true
    end
  end
  return false
end

local function bearer(authorization)
  if authorization == nil then
    return ""
  end
  local scheme, value = string.match(authorization, "^%s*(%S+)%s+(.-)%s*$")
  if scheme == nil or string.lower(scheme) ~= "bearer" then
    return ""
  end
  return value
end

local function ask_the_credentials_service(request_handle, headers)
  headers:add("x-llmagg-auth", "ext")
  request_handle:streamInfo():dynamicMetadata():set("llmagg.keys", "auth", "ext")
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  for _, name in ipairs({"x-llmagg-client-id", "x-llmagg-client-scope", "x-llmagg-auth", "x-llmagg-basic"}) do
    headers:remove(name)
  end
  if starts_with_any(headers:get(":path") or "", ADMIN_PATHS) then
    ask_the_credentials_service(request_handle, headers)
    return
  end
  local key = bearer(headers:get("authorization"))
  if key == "" then
    headers:add("x-llmagg-auth", "missing")
    return
  end
  local user = string.match(key, "^sk%-llmagg%-(" .. string.rep("[0-9a-f]", 12) .. ")%-.") or ENV_ADMIN_ID
  if LEGACY_IDS[user] or (user ~= ENV_ADMIN_ID and not KNOWN_IDS[user]) then
    ask_the_credentials_service(request_handle, headers)
    return
  end
  headers:add("x-llmagg-auth", "envoy")
  headers:add("x-llmagg-client-scope", ADMIN_IDS[user] and "admin" or "client")
  headers:add("x-llmagg-basic", "Basic " .. request_handle:base64Escape(user .. ":" .. key))
  headers:remove("authorization")
end
