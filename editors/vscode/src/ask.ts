// "Ask OpenHands": the prompt, the selection and the active file to /v1/contextual_chat/completions; the
// answer streams into a Markdown document beside the editor, and the progress notification cancels it.

import * as vscode from "vscode";
import { ContextualChatRequest } from "./gateway";
import { MarkdownView } from "./markdownView";
import { notifyError } from "./notify";
import { Settings, gatewayClient, readSettings } from "./settings";

export function contextualRequest(
  prompt: string,
  editor: vscode.TextEditor | undefined,
  settings: Settings,
): ContextualChatRequest {
  const request: ContextualChatRequest = { prompt, model: settings.askModel };
  if (settings.modelQuality) {
    request.model_quality = settings.modelQuality;
  }
  if (settings.provider) {
    request.provider = settings.provider;
  }
  if (editor) {
    const document = editor.document;
    if (!editor.selection.isEmpty) {
      request.selected_text = document.getText(editor.selection);
    }
    const text = document.getText();
    if (text !== "" && settings.maxActiveFileChars > 0) {
      request.active_file_content = text.slice(0, settings.maxActiveFileChars);
    }
    request.active_file_name = vscode.workspace.asRelativePath(document.uri);
    request.language = document.languageId;
  }
  return request;
}

export async function askOpenHands(context: vscode.ExtensionContext): Promise<void> {
  const prompt = await vscode.window.showInputBox({
    title: "Ask OpenHands",
    prompt: "Your question (the selected code and the active file are sent with it)",
    ignoreFocusOut: true,
  });
  if (!prompt?.trim()) {
    return;
  }
  await ask(context, prompt, vscode.window.activeTextEditor);
}

async function ask(context: vscode.ExtensionContext, prompt: string, editor: vscode.TextEditor | undefined) {
  const request = contextualRequest(prompt, editor, readSettings());
  const client = await gatewayClient(context);
  const heading = `## ${prompt.split("\n")[0]}\n\n`;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "OpenHands is answering...", cancellable: true },
    async (_progress, token) => {
      const abort = new AbortController();
      const cancelling = token.onCancellationRequested(() => abort.abort());
      let view: MarkdownView | undefined;
      try {
        for await (const text of client.streamContextualChat(request, abort.signal)) {
          view ??= await MarkdownView.open(heading);
          await view.append(text);
        }
        view ??= await MarkdownView.open(`${heading}_(The answer was empty.)_\n`);
      } catch (problem) {
        if (abort.signal.aborted) {
          await view?.append("\n\n_(Cancelled.)_\n");
          return;
        }
        await view?.append("\n\n_(The answer stopped here: see the notification.)_\n");
        void notifyError(problem, () => ask(context, prompt, editor));
      } finally {
        cancelling.dispose();
      }
    },
  );
}
