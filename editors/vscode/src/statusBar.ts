// The status bar item: the gateway's GET /health, checked every few seconds and on click.

import * as vscode from "vscode";
import { describeError } from "./errors";
import { GatewayClient } from "./gateway";
import { readSettings } from "./settings";

const CHECK_TIMEOUT_MS = 5000;

export class HealthStatus implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<string | undefined> | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
    this.item.name = "OpenHands gateway";
    this.item.command = "openhands.checkHealth";
    this.item.text = "$(sync~spin) OpenHands";
    this.item.show();
  }

  /** (Re)starts the periodic check with the current settings, checking once now. */
  start(): Promise<string | undefined> {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    const seconds = readSettings().healthIntervalSeconds;
    if (seconds > 0) {
      this.timer = setInterval(() => void this.check(), seconds * 1000);
    }
    return this.check();
  }

  /** Asks /health once; undefined when healthy, else what is wrong. */
  check(): Promise<string | undefined> {
    this.running ??= this.ask().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The command behind the item: check now and say the result. */
  async checkAndReport(): Promise<void> {
    const problem = await this.check();
    const url = readSettings().baseUrl;
    if (problem === undefined) {
      vscode.window.showInformationMessage(`OpenHands: the gateway at ${url} is healthy.`);
    } else {
      vscode.window.showErrorMessage(problem);
    }
  }

  private async ask(): Promise<string | undefined> {
    const url = readSettings().baseUrl;
    let problem: string | undefined;
    try {
      const healthy = await new GatewayClient(url, undefined).health(AbortSignal.timeout(CHECK_TIMEOUT_MS));
      problem = healthy ? undefined : `OpenHands: the gateway at ${url} answered /health without "ok".`;
    } catch (error) {
      problem = describeError(error).message;
    }
    this.item.text = problem === undefined ? "$(check) OpenHands" : "$(error) OpenHands";
    this.item.tooltip = problem ?? `The gateway at ${url} is healthy (click to check again).`;
    this.item.backgroundColor = problem === undefined ? undefined : new vscode.ThemeColor("statusBarItem.errorBackground");
    return problem;
  }

  dispose(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
    }
    this.item.dispose();
  }
}
