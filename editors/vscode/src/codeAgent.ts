// "Ask OpenHands Code Agent": the instruction, the selection as context, the language and the workspace
// root as project_directory to /v1/agents/code/invoke; the agent's questions in an input box, answered
// with /v1/agents/resume; the code inserted at the selection or cursor, the explanation beside, the files
// the agent wrote opened. The thread is kept per workspace, so a follow-up continues it.

import { randomBytes } from "crypto";
import * as vscode from "vscode";
import { PendingQuestion, RunOutcome, answer, driveRun, invoke, writtenFiles } from "./agentRun";
import { Cancelled, CodeAgentRequest, GatewayClient } from "./gateway";
import { MarkdownView } from "./markdownView";
import { notifyError } from "./notify";
import { gatewayClient, readSettings } from "./settings";

export const THREAD_KEY = "openhands.agent.threadId";
export const PENDING_KEY = "openhands.agent.pendingQuestion";
const MAX_REVEALED_FILES = 10;

export async function newAgentThread(context: vscode.ExtensionContext): Promise<void> {
  await context.workspaceState.update(THREAD_KEY, undefined);
  await context.workspaceState.update(PENDING_KEY, undefined);
  vscode.window.showInformationMessage("OpenHands: the code agent's next instruction starts a new thread.");
}

function projectFolder(editor: vscode.TextEditor | undefined): vscode.WorkspaceFolder | undefined {
  const own = editor && !editor.document.isUntitled ? vscode.workspace.getWorkspaceFolder(editor.document.uri) : undefined;
  return own ?? vscode.workspace.workspaceFolders?.[0];
}

function askHuman(question: string): Promise<string | undefined> {
  return Promise.resolve(
    vscode.window.showInputBox({
      title: "OpenHands Code Agent asks",
      prompt: question,
      placeHolder: "Your answer",
      ignoreFocusOut: true,
    }),
  );
}

/** Where the run was asked from: the code goes there, the folder is its project. */
export interface Target {
  editor: vscode.TextEditor | undefined;
  selection: vscode.Selection | undefined;
  folder: vscode.WorkspaceFolder | undefined;
  language: string | undefined;
}

export async function invokeCodeAgent(context: vscode.ExtensionContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const target: Target = {
    editor,
    selection: editor?.selection,
    folder: projectFolder(editor),
    language: editor?.document.languageId,
  };
  const state = context.workspaceState;
  const pending = state.get<PendingQuestion>(PENDING_KEY);
  if (pending) {
    const human = await askHuman(pending.question);
    if (human === undefined) {
      return;
    }
    await run(context, target, pending.threadId, "the agent's question", (client, signal) =>
      answer(client, pending, human, signal),
    );
    return;
  }
  const instruction = await vscode.window.showInputBox({
    title: "Ask OpenHands Code Agent",
    prompt: "What should the agent do? (the selected code goes with it as context)",
    ignoreFocusOut: true,
  });
  if (!instruction?.trim()) {
    return;
  }
  const threadId = state.get<string>(THREAD_KEY) ?? `thread_vscode_${randomBytes(10).toString("hex")}`;
  await state.update(THREAD_KEY, threadId);
  const request = agentRequest(instruction, threadId, target);
  await run(context, target, threadId, instruction, (client, signal) => invoke(client, request, signal));
}

export function agentRequest(instruction: string, threadId: string, target: Target): CodeAgentRequest {
  const settings = readSettings();
  const request: CodeAgentRequest = { instruction, thread_id: threadId };
  if (target.editor && target.selection && !target.selection.isEmpty) {
    request.context = target.editor.document.getText(target.selection);
  }
  if (target.language) {
    request.language = target.language;
  }
  if (target.folder) {
    request.project_directory = target.folder.uri.fsPath;
  }
  if (settings.modelQuality) {
    request.model_quality = settings.modelQuality;
  }
  if (settings.provider) {
    request.provider = settings.provider;
  }
  return request;
}

type Start = (client: GatewayClient, signal: AbortSignal) => () => ReturnType<GatewayClient["invokeCodeAgent"]>;

async function run(
  context: vscode.ExtensionContext,
  target: Target,
  threadId: string,
  title: string,
  start: Start,
): Promise<void> {
  const client = await gatewayClient(context);
  const hooks = {
    askHuman,
    setPending: (question: PendingQuestion | undefined) =>
      Promise.resolve(context.workspaceState.update(PENDING_KEY, question)),
  };
  let outcome: RunOutcome | undefined;
  let written: string[] = [];
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "OpenHands Code Agent is working...", cancellable: true },
      async (_progress, token) => {
        const abort = new AbortController();
        const cancelling = token.onCancellationRequested(() => abort.abort());
        try {
          const before = (await client.getThread(threadId, abort.signal))?.messages?.length ?? 0;
          outcome = await driveRun(client, start(client, abort.signal), hooks, abort.signal);
          const thread = await client.getThread(threadId, abort.signal).catch(() => undefined);
          written = writtenFiles(thread?.messages?.slice(before) ?? []);
        } finally {
          cancelling.dispose();
        }
      },
    );
  } catch (problem) {
    if (problem instanceof Cancelled) {
      vscode.window.showInformationMessage(
        "OpenHands: stopped waiting. The agent may still finish this run on the gateway; its thread keeps the result.",
      );
      return;
    }
    await notifyError(problem, () => run(context, target, threadId, title, start));
    return;
  }
  if (outcome) {
    await present(outcome, target, title, written);
  }
}

async function present(outcome: RunOutcome, target: Target, title: string, written: string[]): Promise<void> {
  const response = outcome.response;
  if (response.agent_status === "requires_human_input") {
    vscode.window.showInformationMessage(
      `OpenHands: the code agent waits for your answer to "${response.human_input_request?.question_for_human}". ` +
        'Run "Ask OpenHands Code Agent" again to answer it.',
    );
    return;
  }
  if (response.agent_status !== "completed") {
    const picked = await vscode.window.showErrorMessage(
      `OpenHands: the code agent stopped: ${response.error_details ?? response.agent_status}`,
      "Start a New Thread",
    );
    if (picked) {
      await vscode.commands.executeCommand("openhands.newAgentThread");
    }
    return;
  }
  if (response.generated_code) {
    await insertCode(response.generated_code, target);
  }
  const notes: string[] = [];
  if (response.explanation) {
    notes.push(response.explanation);
  }
  if (written.length > 0) {
    notes.push(`**Files written:** ${written.map((file) => `\`${file}\``).join(", ")}`);
  }
  if (notes.length > 0) {
    const footer = `_${response.model_used ?? "unknown model"}, thread ${response.thread_id}_`;
    await MarkdownView.open(`## ${title.split("\n")[0]}\n\n${notes.join("\n\n")}\n\n${footer}\n`);
  }
  if (target.folder) {
    for (const file of written.slice(0, MAX_REVEALED_FILES)) {
      const uri = vscode.Uri.joinPath(target.folder.uri, ...file.split(/[\\/]/));
      await vscode.window.showTextDocument(uri, { preview: false, preserveFocus: true }).then(
        () => undefined,
        () => undefined,
      );
    }
  }
}

/** Replaces the selection with the code, or inserts it at the cursor; a new document when no editor was open. */
export async function insertCode(code: string, target: Target): Promise<void> {
  const { editor, selection } = target;
  if (editor && selection && !editor.document.isClosed) {
    const done = await editor.edit((edit) => {
      if (selection.isEmpty) {
        edit.insert(selection.active, code);
      } else {
        edit.replace(selection, code);
      }
    });
    if (done) {
      return;
    }
  }
  const document = await vscode.workspace.openTextDocument({ language: target.language, content: code });
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
}
