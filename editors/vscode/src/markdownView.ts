// A Markdown document beside the editor that text is appended to as it arrives.

import * as vscode from "vscode";

export class MarkdownView {
  private pending: Promise<unknown> = Promise.resolve();

  private constructor(readonly document: vscode.TextDocument) {}

  static async open(initial: string): Promise<MarkdownView> {
    const document = await vscode.workspace.openTextDocument({ language: "markdown", content: initial });
    await vscode.window.showTextDocument(document, {
      viewColumn: vscode.ViewColumn.Beside,
      preserveFocus: true,
      preview: false,
    });
    return new MarkdownView(document);
  }

  /** Appends after what is there (appends are applied one after another, in order). */
  append(text: string): Promise<unknown> {
    this.pending = this.pending.then(() => {
      const edit = new vscode.WorkspaceEdit();
      edit.insert(this.document.uri, this.document.positionAt(this.document.getText().length), text);
      return vscode.workspace.applyEdit(edit);
    });
    return this.pending;
  }
}
