// One run of the code agent with its human-in-the-loop questions, independent of the editor: the
// command handler (codeAgent.ts) gives it the questions' UI and where to keep a pending question.

import { CodeAgentRequest, CodeAgentResponse, GatewayClient, HumanInputRequest, ThreadMessage } from "./gateway";

/** A question the agent asked that has not been answered yet (kept per workspace). */
export interface PendingQuestion {
  threadId: string;
  toolCallId: string;
  question: string;
}

export interface RunHooks {
  /** Asks the user; undefined when they dismissed the question. */
  askHuman(question: string): Promise<string | undefined>;
  /** Called with the question the run now waits on, or undefined once it waits on none. */
  setPending(pending: PendingQuestion | undefined): Promise<void>;
}

export interface RunOutcome {
  /** The last response; `requires_human_input` when the user left the question unanswered. */
  response: CodeAgentResponse;
  /** Questions asked and answered during the run, in order. */
  answered: { question: string; answer: string }[];
}

function pendingOf(threadId: string, asked: HumanInputRequest): PendingQuestion {
  return { threadId, toolCallId: asked.tool_call_id, question: asked.question_for_human };
}

/**
 * Answers the agent's questions and resumes until the run completes, errors, or the user leaves a
 * question unanswered. `start` is the first call: an invoke, or the resume of a pending question.
 */
export async function driveRun(
  client: GatewayClient,
  start: () => Promise<CodeAgentResponse>,
  hooks: RunHooks,
  signal?: AbortSignal,
): Promise<RunOutcome> {
  const answered: { question: string; answer: string }[] = [];
  let response = await start();
  while (response.agent_status === "requires_human_input" && response.human_input_request) {
    const pending = pendingOf(response.thread_id, response.human_input_request);
    await hooks.setPending(pending);
    const answer = await hooks.askHuman(pending.question);
    if (answer === undefined) {
      return { response, answered };
    }
    response = await client.resumeAgent(
      { thread_id: pending.threadId, tool_call_id: pending.toolCallId, human_response: answer },
      signal,
    );
    answered.push({ question: pending.question, answer });
  }
  await hooks.setPending(undefined);
  return { response, answered };
}

/** Starts a run: an invoke with the request as given. */
export function invoke(client: GatewayClient, request: CodeAgentRequest, signal?: AbortSignal) {
  return () => client.invokeCodeAgent(request, signal);
}

/** Starts a run by answering the question it was left waiting on. */
export function answer(client: GatewayClient, pending: PendingQuestion, human: string, signal?: AbortSignal) {
  return () =>
    client.resumeAgent({ thread_id: pending.threadId, tool_call_id: pending.toolCallId, human_response: human }, signal);
}

/**
 * The files the agent wrote in these messages (relative to its project): its `write_file` calls whose
 * result is not a refusal, each named once, in the order written.
 */
export function writtenFiles(messages: ThreadMessage[]): string[] {
  const results = new Map<string, string>();
  for (const message of messages) {
    if (message.role === "tool" && message.tool_call_id) {
      results.set(message.tool_call_id, message.content ?? "");
    }
  }
  const written: string[] = [];
  for (const message of messages) {
    for (const call of message.role === "assistant" ? (message.tool_calls ?? []) : []) {
      if (call.function?.name !== "write_file") {
        continue;
      }
      const result = results.get(call.id);
      if (result === undefined || result.startsWith("Error")) {
        continue;
      }
      let filepath: unknown;
      try {
        filepath = JSON.parse(call.function.arguments || "{}").filepath;
      } catch {
        continue;
      }
      if (typeof filepath === "string" && !written.includes(filepath)) {
        written.push(filepath);
      }
    }
  }
  return written;
}
