-- Turns gRPC errors from the services into OpenAI-shaped REST errors and drops gRPC-only headers.
-- Services put the OpenAI error JSON in the `x-openai-error` trailer (and, where the HTTP status the
-- gRPC code maps to is not the right one, the status in `x-http-status`); the transcoder hands
-- trailers of an error response to us as headers. An error a service did not shape (a call cut at
-- shutdown, a message over gRPC's limits) still gets an OpenAI body. Native gRPC clients get the gRPC
-- response untouched.

-- gRPC status code -> HTTP status, OpenAI error type and code, for errors without an OpenAI body.
local UNSHAPED = {
  ["1"] = {"503", "service_unavailable_error", "upstream_cancelled"},
  ["4"] = {"504", "timeout_error", "upstream_deadline_exceeded"},
  ["8"] = {"413", "invalid_request_error", "request_too_large"},
  ["12"] = {"404", "invalid_request_error", "unknown_url"},
  ["14"] = {"503", "service_unavailable_error", "upstream_unavailable"},
}

local function json_string(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function envoy_on_request(request_handle)
  local content_type = request_handle:headers():get("content-type") or ""
  if string.sub(content_type, 1, 16) == "application/grpc" then
    request_handle:streamInfo():dynamicMetadata():set("llmagg.gateway", "grpc_client", "true")
  end
end

function envoy_on_response(response_handle)
  local metadata = response_handle:streamInfo():dynamicMetadata():get("llmagg.gateway")
  if metadata ~= nil and metadata["grpc_client"] == "true" then
    return
  end
  local headers = response_handle:headers()
  -- gRPC plumbing means nothing to a REST client.
  headers:remove("grpc-accept-encoding")
  headers:remove("grpc-encoding")
  headers:remove("x-llmagg-retry-elsewhere")
  local openai_error = headers:get("x-openai-error")
  local grpc_status = headers:get("grpc-status")
  if openai_error == nil then
    if grpc_status == "0" then
      headers:remove("grpc-status")
      headers:remove("grpc-message")
    end
    if grpc_status == nil or grpc_status == "0" then
      return
    end
    local shape = UNSHAPED[grpc_status] or {"500", "server_error", "internal_error"}
    headers:replace(":status", shape[1])
    if shape[1] == "503" then
      headers:replace("retry-after", "1")
    end
    local message = headers:get("grpc-message") or "The server could not complete the request."
    openai_error = '{"error":{"message":' .. json_string(message) .. ',"type":"' .. shape[2]
      .. '","param":null,"code":"' .. shape[3] .. '"}}'
  end
  local http_status = headers:get("x-http-status")
  if http_status ~= nil then
    headers:replace(":status", http_status)
  end
  -- Headers must be changed before body() is called.
  headers:remove("x-openai-error")
  headers:remove("x-http-status")
  headers:remove("grpc-status-details-bin")
  headers:remove("grpc-message")
  headers:remove("grpc-status")
  headers:replace("content-type", "application/json")
  response_handle:body(true):setBytes(openai_error)
end
