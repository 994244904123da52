-- A small JSON body that cannot ask for a stream goes to the router's unary method for its route
-- (`<path>:unary`: one gRPC call in and one answer out, fewer gRPC operations than the client-streamed
-- method). Runs after the client's key and limits were checked, just before the transcoder, which
-- maps the rewritten path to its method. Anything in doubt keeps the client-streamed method, which
-- serves every body: a body over UNARY_MAX_BYTES or without a content-length (never held here), and
-- any body with `"stream": true` in it, even nested. A stream asked for in a way this misses (an
-- escaped key) is still answered by the unary method, as one whole SSE body.
local UNARY_PATHS = {
  ["/v1/chat/completions"] = "/v1/chat/completions:unary",
  ["/v1/embeddings"] = "/v1/embeddings:unary",
}
local UNARY_MAX_BYTES = 65536

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local unary_path = UNARY_PATHS[headers:get(":path") or ""]
  if unary_path == nil or headers:get(":method") ~= "POST" then
    return
  end
  local length = tonumber(headers:get("content-length") or "")
  if length == nil or length < 1 or length > UNARY_MAX_BYTES then
    return
  end
  local body = request_handle:body()
  if body == nil or string.find(body:getBytes(0, body:length()), '"stream"%s*:%s*true') then
    return
  end
  -- A header map fetched before body() may not be used after it. The access log's path shows the
  -- rewritten one (the transcoder records the path it mapped).
  request_handle:headers():replace(":path", unary_path)
end
