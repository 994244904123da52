// The gateway's REST API as the extension uses it. No `vscode` import: the integration tests run this
// module against the real stack from plain node.

export interface ContextualChatRequest {
  prompt: string;
  selected_text?: string;
  active_file_content?: string;
  active_file_name?: string;
  language?: string;
  model?: string;
  provider?: string;
  model_quality?: string;
}

export interface CodeAgentRequest {
  instruction: string;
  context?: string;
  language?: string;
  project_directory?: string;
  thread_id?: string;
  model_quality?: string;
  provider?: string;
}

export interface ResumeAgentRequest {
  thread_id: string;
  tool_call_id: string;
  human_response: string;
}

export interface HumanInputRequest {
  tool_call_id: string;
  question_for_human: string;
}

export interface CodeAgentResponse {
  generated_code?: string;
  explanation?: string;
  agent_status: "completed" | "requires_human_input" | "error" | string;
  human_input_request?: HumanInputRequest;
  model_used?: string;
  error_details?: string;
  thread_id: string;
}

export interface ToolCall {
  id: string;
  function: { name: string; arguments: string };
}

export interface ThreadMessage {
  role: string;
  content?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

export interface AgentThread {
  thread_id: string;
  agent_status: string;
  messages?: ThreadMessage[];
}

/** An answer of the gateway in OpenAI's error shape (or an HTTP status without one). */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

/** The gateway did not answer at all (refused, DNS, reset). */
export class GatewayUnreachable extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the gateway at ${url}: ${reason}`);
    this.name = "GatewayUnreachable";
  }
}

/** The user cancelled the request. */
export class Cancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "Cancelled";
  }
}

export type Fetch = typeof fetch;

function retryAfter(headers: Headers): number | undefined {
  const value = headers.get("retry-after");
  if (value === null) {
    return undefined;
  }
  const seconds = Number(value);
  if (Number.isFinite(seconds)) {
    return Math.max(0, Math.ceil(seconds));
  }
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function errorOf(response: Response): Promise<GatewayError> {
  const text = await response.text().catch(() => "");
  let message = `HTTP ${response.status}`;
  let code: string | undefined;
  try {
    const error = JSON.parse(text).error;
    if (error && typeof error === "object") {
      message = String(error.message ?? message);
      code = error.code ?? error.type ?? undefined;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new GatewayError(message, response.status, code, retryAfter(response.headers));
}

export class GatewayClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiKey: string | undefined,
    private readonly fetchImpl: Fetch = fetch,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  private async send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (this.apiKey) {
      headers["Authorization"] = `Bearer ${this.apiKey}`;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (problem) {
      if (signal?.aborted) {
        throw new Cancelled();
      }
      const cause = (problem as { cause?: { code?: string; message?: string } }).cause;
      throw new GatewayUnreachable(this.baseUrl, cause?.code ?? cause?.message ?? String(problem));
    }
    if (!response.ok) {
      throw await errorOf(response);
    }
    return response;
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.send(method, path, body, signal);
    try {
      return (await response.json()) as T;
    } catch (problem) {
      if (signal?.aborted) {
        throw new Cancelled();
      }
      throw problem;
    }
  }

  /** GET /health (no key needed): true when the gateway answers {"status": "ok"}. */
  async health(signal?: AbortSignal): Promise<boolean> {
    const body = await this.json<{ status?: string }>("GET", "/health", undefined, signal);
    return body.status === "ok";
  }

  /** The answer's text as it streams (SSE chunks of /v1/contextual_chat/completions). */
  async *streamContextualChat(request: ContextualChatRequest, signal?: AbortSignal): AsyncGenerator<string> {
    const response = await this.send("POST", "/v1/contextual_chat/completions", { ...request, stream: true }, signal);
    if (!response.body) {
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (problem) {
          if (signal?.aborted) {
            throw new Cancelled();
          }
          throw new GatewayUnreachable(this.baseUrl, `the stream broke: ${String(problem)}`);
        }
        if (chunk.done) {
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          const data = event
            .split(/\r?\n/)
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          if (data === "") {
            continue;
          }
          if (data === "[DONE]") {
            return;
          }
          const parsed = JSON.parse(data);
          if (parsed.error) {
            throw new GatewayError(String(parsed.error.message), 200, parsed.error.code ?? parsed.error.type);
          }
          const text = parsed.choices?.[0]?.delta?.content;
          if (typeof text === "string" && text !== "") {
            yield text;
          }
        }
      }
    } finally {
      // Ends the HTTP stream when the reader stopped early (cancelled, an error event): the gateway stops too.
      await reader.cancel().catch(() => undefined);
    }
  }

  invokeCodeAgent(request: CodeAgentRequest, signal?: AbortSignal): Promise<CodeAgentResponse> {
    return this.json("POST", "/v1/agents/code/invoke", request, signal);
  }

  resumeAgent(request: ResumeAgentRequest, signal?: AbortSignal): Promise<CodeAgentResponse> {
    return this.json("POST", "/v1/agents/resume", request, signal);
  }

  /** The thread, or undefined when the gateway does not know it (404). */
  async getThread(threadId: string, signal?: AbortSignal): Promise<AgentThread | undefined> {
    try {
      return await this.json<AgentThread>("GET", `/v1/agents/threads/${encodeURIComponent(threadId)}`, undefined, signal);
    } catch (problem) {
      if (problem instanceof GatewayError && problem.status === 404) {
        return undefined;
      }
      throw problem;
    }
  }
}
