// `npm run test:electron`: the extension inside a real VS Code (the Extension Development Host) that
// @vscode/test-electron downloads from update.code.visualstudio.com. Where that cannot be fetched (this
// project's CI has no network beyond the npm registry), `make test` runs the stand-in suites instead.

import * as path from "path";
import { runTests } from "@vscode/test-electron";

async function main(): Promise<void> {
  const extensionDevelopmentPath = path.resolve(__dirname, "..", "..", "..");
  const extensionTestsPath = path.resolve(__dirname, "suite");
  await runTests({ extensionDevelopmentPath, extensionTestsPath, launchArgs: ["--disable-extensions"] });
}

main().catch((problem) => {
  console.error(problem);
  process.exit(1);
});
