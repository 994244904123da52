// What the unit and integration tests share: an activated extension on the stand-in, and a scripted gateway.

import "./register";
import * as http from "http";
import { AddressInfo } from "net";
import { activate } from "../extension";
import { extensionContext, fake, reset } from "./fakeVscode";

export interface Activated {
  context: ReturnType<typeof extensionContext>;
  run(command: string, ...args: unknown[]): Promise<unknown>;
  dispose(): void;
}

/** A fresh stand-in with these settings, the extension activated on it (no periodic health check). */
export function activated(settings: Record<string, unknown> = {}): Activated {
  reset();
  fake.settings = { "openhands.healthIntervalSeconds": 0, ...settings };
  const context = extensionContext();
  activate(context as never);
  return {
    context,
    run: (command, ...args) => {
      const callback = fake.commands.get(command);
      if (!callback) {
        throw new Error(`${command} is not registered`);
      }
      return Promise.resolve(callback(...args));
    },
    dispose: () => context.dispose(),
  };
}

export interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export type Reply = (request: Received, response: http.ServerResponse) => void;

/** A local HTTP server answering each request with the next reply scripted for its path. */
export class ScriptedGateway {
  readonly received: Received[] = [];
  private readonly replies = new Map<string, Reply[]>();
  private server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString();
      const received = {
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      this.received.push(received);
      const key = (request.url ?? "").split("?")[0];
      const reply = this.replies.get(key)?.shift() ?? this.fallback(key);
      reply(received, response);
    });
  });

  private fallback(key: string): Reply {
    if (key === "/health") {
      return json(200, { status: "ok" });
    }
    if (key.startsWith("/v1/agents/threads/")) {
      return json(404, { error: { message: "no such thread", type: "not_found_error", code: "thread_not_found" } });
    }
    return json(500, { error: { message: `nothing scripted for ${key}`, code: "unscripted" } });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(path: string, ...replies: Reply[]): this {
    this.replies.set(path, [...(this.replies.get(path) ?? []), ...replies]);
    return this;
  }

  requestsTo(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return (_request, response) => {
    response.writeHead(status, { "Content-Type": "application/json", ...headers });
    response.end(JSON.stringify(body));
  };
}

/** An SSE answer with these text pieces, each a chat.completion.chunk, then [DONE]. */
export function sse(pieces: string[]): Reply {
  return (_request, response) => {
    response.writeHead(200, { "Content-Type": "text/event-stream" });
    for (const piece of pieces) {
      response.write(`data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: piece } }] })}\n\n`);
    }
    response.end("data: [DONE]\n\n");
  };
}
