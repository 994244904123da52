// A stand-in for the `vscode` module: the part of the API the extension uses, with documents held in
// memory and every notification, input box and shown editor recorded. `fake` scripts and reads it.

import * as fs from "fs";
import * as path from "path";

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
  isEqual(other: Position): boolean {
    return this.line === other.line && this.character === other.character;
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(start: Position | number, end: Position | number, endLine?: number, endCharacter?: number) {
    if (typeof start === "number") {
      this.start = new Position(start, end as number);
      this.end = new Position(endLine as number, endCharacter as number);
    } else {
      this.start = start;
      this.end = end as Position;
    }
  }
  get isEmpty(): boolean {
    return this.start.isEqual(this.end);
  }
}

export class Selection extends Range {
  readonly anchor: Position;
  readonly active: Position;
  constructor(anchor: Position | number, active: Position | number, activeLine?: number, activeCharacter?: number) {
    const a = typeof anchor === "number" ? new Position(anchor, active as number) : anchor;
    const b = typeof anchor === "number" ? new Position(activeLine as number, activeCharacter as number) : (active as Position);
    super(a, b);
    this.anchor = a;
    this.active = b;
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(p: string): Uri {
    return new Uri("file", path.resolve(p));
  }
  static untitled(name: string): Uri {
    return new Uri("untitled", name);
  }
  static joinPath(base: Uri, ...segments: string[]): Uri {
    return new Uri(base.scheme, path.join(base.fsPath, ...segments));
  }
  get path(): string {
    return this.fsPath;
  }
  toString(): string {
    return `${this.scheme}:${this.fsPath}`;
  }
}

export class TextDocument {
  isClosed = false;
  constructor(
    readonly uri: Uri,
    public text: string,
    readonly languageId: string,
  ) {}
  get isUntitled(): boolean {
    return this.uri.scheme === "untitled";
  }
  get fileName(): string {
    return this.uri.fsPath;
  }
  offsetAt(position: Position): number {
    const lines = this.text.split("\n");
    let offset = 0;
    for (let line = 0; line < position.line; line++) {
      offset += lines[line].length + 1;
    }
    return offset + position.character;
  }
  positionAt(offset: number): Position {
    const before = this.text.slice(0, offset).split("\n");
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  getText(range?: Range): string {
    return range ? this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end)) : this.text;
  }
  /** Applies edits given as [start, end, text], the later ones first so offsets stay right. */
  apply(edits: [Position, Position, string][]): void {
    const spans = edits.map(([s, e, t]) => [this.offsetAt(s), this.offsetAt(e), t] as const);
    for (const [start, end, text] of spans.sort((x, y) => y[0] - x[0])) {
      this.text = this.text.slice(0, start) + text + this.text.slice(end);
    }
  }
}

export class TextEditor {
  constructor(
    readonly document: TextDocument,
    public selection: Selection = new Selection(0, 0, 0, 0),
  ) {}
  async edit(callback: (builder: { insert(p: Position, t: string): void; replace(r: Range, t: string): void }) => void) {
    const edits: [Position, Position, string][] = [];
    callback({
      insert: (p, t) => edits.push([p, p, t]),
      replace: (r, t) => edits.push([r.start, r.end, t]),
    });
    this.document.apply(edits);
    return true;
  }
}

export class WorkspaceEdit {
  readonly edits: [Uri, Position, string][] = [];
  insert(uri: Uri, position: Position, text: string): void {
    this.edits.push([uri, position, text]);
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
}

export class CancellationTokenSource {
  private emitter = new EventEmitter<void>();
  token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel(): void {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
}

export const ViewColumn = { Active: -1, Beside: -2, One: 1, Two: 2 };
export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };

export interface Notification {
  severity: "error" | "warning" | "information";
  message: string;
  items: string[];
}

export interface StatusBarItem {
  text: string;
  tooltip?: string;
  command?: string;
  name?: string;
  backgroundColor?: ThemeColor;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

type InputAnswer = string | undefined | ((options: Record<string, unknown>) => string | undefined);

/** What a test scripts and reads. `reset()` gives each test a fresh one. */
class FakeState {
  commands = new Map<string, (...args: unknown[]) => unknown>();
  executed: { command: string; args: unknown[] }[] = [];
  settings: Record<string, unknown> = {};
  inputs: InputAnswer[] = [];
  inputBoxes: Record<string, unknown>[] = [];
  notifications: Notification[] = [];
  /** Picks a notification's button: given the notification, the title to click (or undefined). */
  choose: (notification: Notification) => string | undefined = () => undefined;
  documents: TextDocument[] = [];
  shown: { document: TextDocument; options: Record<string, unknown> | undefined }[] = [];
  statusBarItems: StatusBarItem[] = [];
  workspaceFolders: { uri: Uri; name: string; index: number }[] | undefined;
  activeTextEditor: TextEditor | undefined;
  progress: CancellationTokenSource[] = [];
  /** Called when a progress notification starts (a test may cancel it). */
  onProgress: (source: CancellationTokenSource) => void = () => undefined;
  configuration = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
  untitled = 0;
  /** How many workspace edits were applied (a streamed answer is appended piece by piece). */
  applied = 0;

  notify(severity: Notification["severity"], message: string, items: string[]): Promise<string | undefined> {
    const notification = { severity, message, items };
    this.notifications.push(notification);
    return Promise.resolve(this.choose(notification));
  }

  openEditor(filePath: string, text: string, languageId: string, selection?: Selection): TextEditor {
    const document = new TextDocument(Uri.file(filePath), text, languageId);
    this.documents.push(document);
    this.activeTextEditor = new TextEditor(document, selection);
    return this.activeTextEditor;
  }

  openFolder(folder: string): void {
    this.workspaceFolders = [{ uri: Uri.file(folder), name: path.basename(folder), index: 0 }];
  }

  /** The untitled documents opened, in order (answers, explanations). */
  get untitledTexts(): string[] {
    return this.documents.filter((d) => d.isUntitled).map((d) => d.text);
  }
}

export let fake = new FakeState();

export function reset(): FakeState {
  fake = new FakeState();
  return fake;
}

function documentFor(uri: Uri): TextDocument {
  const open = fake.documents.find((d) => d.uri.toString() === uri.toString());
  if (open) {
    return open;
  }
  const document = new TextDocument(uri, fs.readFileSync(uri.fsPath, "utf8"), "plaintext");
  fake.documents.push(document);
  return document;
}

export const commands = {
  registerCommand(command: string, callback: (...args: unknown[]) => unknown) {
    fake.commands.set(command, callback);
    return { dispose: () => fake.commands.delete(command) };
  },
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    fake.executed.push({ command, args });
    const callback = fake.commands.get(command);
    return callback ? await callback(...args) : undefined;
  },
};

export const window = {
  get activeTextEditor() {
    return fake.activeTextEditor;
  },
  showInputBox(options: Record<string, unknown> = {}): Promise<string | undefined> {
    fake.inputBoxes.push(options);
    const next = fake.inputs.shift();
    return Promise.resolve(typeof next === "function" ? next(options) : next);
  },
  showErrorMessage: (message: string, ...items: string[]) => fake.notify("error", message, items),
  showWarningMessage: (message: string, ...items: string[]) => fake.notify("warning", message, items),
  showInformationMessage: (message: string, ...items: string[]) => fake.notify("information", message, items),
  async showTextDocument(target: TextDocument | Uri, options?: Record<string, unknown>) {
    const document = target instanceof TextDocument ? target : documentFor(target);
    fake.shown.push({ document, options });
    return new TextEditor(document);
  },
  createStatusBarItem(): StatusBarItem {
    const item: StatusBarItem = {
      text: "",
      visible: false,
      show: () => (item.visible = true),
      hide: () => (item.visible = false),
      dispose: () => (item.visible = false),
    };
    fake.statusBarItems.push(item);
    return item;
  },
  async withProgress<T>(
    _options: unknown,
    task: (progress: { report(value: unknown): void }, token: CancellationTokenSource["token"]) => Promise<T>,
  ): Promise<T> {
    const source = new CancellationTokenSource();
    fake.progress.push(source);
    fake.onProgress(source);
    return task({ report: () => undefined }, source.token);
  },
};

export const workspace = {
  get workspaceFolders() {
    return fake.workspaceFolders;
  },
  getWorkspaceFolder(uri: Uri) {
    return fake.workspaceFolders?.find((f) => uri.fsPath.startsWith(f.uri.fsPath + path.sep));
  },
  asRelativePath(uri: Uri): string {
    const folder = workspace.getWorkspaceFolder(uri);
    return folder ? path.relative(folder.uri.fsPath, uri.fsPath) : uri.fsPath;
  },
  getConfiguration(section: string) {
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const value = fake.settings[`${section}.${key}`];
        return value === undefined ? fallback : (value as T);
      },
    };
  },
  async openTextDocument(what: { language?: string; content?: string } | Uri): Promise<TextDocument> {
    if (what instanceof Uri) {
      return documentFor(what);
    }
    const document = new TextDocument(
      Uri.untitled(`Untitled-${++fake.untitled}`),
      what.content ?? "",
      what.language ?? "plaintext",
    );
    fake.documents.push(document);
    return document;
  },
  async applyEdit(edit: WorkspaceEdit): Promise<boolean> {
    fake.applied += 1;
    for (const [uri, position, text] of edit.edits) {
      documentFor(uri).apply([[position, position, text]]);
    }
    return true;
  },
  onDidChangeConfiguration: (listener: Listener<{ affectsConfiguration(section: string): boolean }>) =>
    fake.configuration.event(listener),
};

/** An ExtensionContext with secret storage and workspace state in memory. */
export function extensionContext() {
  const secrets = new Map<string, string>();
  const state = new Map<string, unknown>();
  const secretCalls: string[] = [];
  return {
    subscriptions: [] as { dispose(): unknown }[],
    secretCalls,
    secretValues: secrets,
    secrets: {
      get: async (key: string) => (secretCalls.push(`get ${key}`), secrets.get(key)),
      store: async (key: string, value: string) => (secretCalls.push(`store ${key}`), void secrets.set(key, value)),
      delete: async (key: string) => (secretCalls.push(`delete ${key}`), void secrets.delete(key)),
      onDidChange: new EventEmitter<unknown>().event,
    },
    workspaceState: {
      get: <T>(key: string, fallback?: T) => (state.has(key) ? (state.get(key) as T) : fallback),
      update: async (key: string, value: unknown) => void (value === undefined ? state.delete(key) : state.set(key, value)),
      keys: () => [...state.keys()],
    },
    dispose(): void {
      for (const subscription of this.subscriptions) {
        subscription.dispose();
      }
    },
  };
}
