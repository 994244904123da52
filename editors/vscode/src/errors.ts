// What to tell the user when a call fails, and which action the notification offers. No `vscode` import.

import { GatewayError, GatewayUnreachable } from "./gateway";

export type ActionId = "setApiKey" | "openSettings" | "retry" | "newThread";

export interface ErrorNotice {
  message: string;
  /** Offered as the notification's buttons, in this order. */
  actions: { id: ActionId; title: string }[];
  /** Warnings for what passes (a rate limit), errors for what the user must fix. */
  severity: "error" | "warning";
}

const SET_KEY = { id: "setApiKey", title: "Set API Key" } as const;
const SETTINGS = { id: "openSettings", title: "Open Settings" } as const;
const RETRY = { id: "retry", title: "Retry" } as const;
const NEW_THREAD = { id: "newThread", title: "Start a New Thread" } as const;

// The agent's thread cannot take this call: waiting for another answer, busy, gone, or no longer waiting.
const THREAD_REFUSALS = new Set([
  "thread_not_found",
  "thread_waiting_for_human",
  "thread_busy",
  "thread_not_waiting",
  "tool_call_id_mismatch",
]);

function seconds(n: number): string {
  return n === 1 ? "1 second" : `${n} seconds`;
}

export function describeError(problem: unknown): ErrorNotice {
  if (problem instanceof GatewayUnreachable) {
    return {
      message:
        `OpenHands cannot reach the gateway at ${problem.url} (${problem.reason}). ` +
        "Is it running (`make run`)? Check the openhands.api.baseUrl setting.",
      actions: [SETTINGS, RETRY],
      severity: "error",
    };
  }
  if (!(problem instanceof GatewayError)) {
    return { message: `OpenHands: ${problem instanceof Error ? problem.message : String(problem)}`, actions: [], severity: "error" };
  }
  const { status, code, message, retryAfterSeconds } = problem;
  const wait = retryAfterSeconds === undefined ? "" : ` Try again in ${seconds(retryAfterSeconds)}.`;
  if (status === 401) {
    const what =
      code === "missing_api_key"
        ? "OpenHands has no client API key for the gateway."
        : "The gateway refused OpenHands' client API key (wrong or revoked).";
    return {
      message: `${what} Set one with "OpenHands: Set Client API Key" (\`llmagg keys create --name me\` makes one).`,
      actions: [SET_KEY],
      severity: "error",
    };
  }
  if (status === 403 && code === "project_directory_not_allowed") {
    return {
      message: `${message} The gateway's operator grants folders to keys in AGENT_WORKSPACE_ROOTS.`,
      actions: [],
      severity: "error",
    };
  }
  if (status === 403 && code === "insufficient_scope") {
    return { message: `The client API key may not do this: ${message}`, actions: [SET_KEY], severity: "error" };
  }
  if (status === 429) {
    return {
      message: `The gateway is rate limiting OpenHands (${code ?? "rate_limit_exceeded"}): ${message}${wait}`,
      actions: [RETRY],
      severity: "warning",
    };
  }
  if (status === 503 && code === "no_accounts_configured") {
    return {
      message: `The gateway has no provider account to answer with. ${message}`,
      actions: [RETRY],
      severity: "error",
    };
  }
  if (code !== undefined && THREAD_REFUSALS.has(code)) {
    return { message: `The code agent's thread: ${message}`, actions: [NEW_THREAD], severity: "error" };
  }
  if (status >= 500) {
    return {
      message: `The gateway could not answer (${code ?? `HTTP ${status}`}): ${message}${wait}`,
      actions: [RETRY],
      severity: status === 503 ? "warning" : "error",
    };
  }
  return { message: `OpenHands: ${message} (${code ?? `HTTP ${status}`})`, actions: [], severity: "error" };
}
