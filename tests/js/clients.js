// Drives real xAPI clients (xAPI.js 3, TinCanJS) against a running LDE, for
// tests/integration/test_xapi_resource.py. Usage: node clients.js STEPS.json
// STEPS.json: {"endpoint": "http://host:port/xapi/", "steps": [{"client": "xapijs" | "tincan",
//   "op": "about" | "post" | "postMany" | "put" | "void", "key": ..., "secret": ...,
//   "statement": {...}, "statements": [...], "actor": {...}, "statementId": "..."}]}
// Prints one JSON line: [{"status": 200, "body": ...}, ...], a result per step, in order.
"use strict";

const fs = require("fs");
const XAPI = require("@xapi/xapi");
const TinCan = require("tincanjs");

const VOIDED = "http://adlnet.gov/expapi/verbs/voided";

async function xapijs(endpoint, step) {
  const xapi = new XAPI({ endpoint, auth: XAPI.toBasicAuth(step.key, step.secret) });
  const calls = {
    about: () => xapi.getAbout(),
    post: () => xapi.sendStatement({ statement: step.statement }),
    postMany: () => xapi.sendStatements({ statements: step.statements }),
    void: () => xapi.voidStatement({ actor: step.actor, statementId: step.statementId }),
  };
  try {
    const response = await calls[step.op]();
    return { status: response.status, body: response.data, version: response.headers["x-experience-api-version"] };
  } catch (error) {
    if (!error.response) throw error;
    return { status: error.response.status, body: error.response.data };
  }
}

function tincan(endpoint, step) {
  // TinCanJS 0.50 speaks up to 1.0.2 (its newest): the LRS takes any 1.0.x.
  const lrs = new TinCan.LRS({ endpoint, username: step.key, password: step.secret, allowFail: false });
  return new Promise((resolve) => {
    const done = (err, xhr) => {
      // TinCan hands over the request (xhr) on success and on HTTP errors alike.
      const request = xhr && xhr.status !== undefined ? xhr : null;
      if (step.op === "about" && err === null) {
        resolve({ status: 200, body: { version: xhr.version } });
        return;
      }
      if (request === null) {
        resolve({ status: 0, body: String(err) });
        return;
      }
      let body = request.responseText;
      try {
        body = JSON.parse(body);
      } catch (ignored) {
        // an empty 204 body
      }
      resolve({ status: request.status, body, version: request.getResponseHeader && request.getResponseHeader("X-Experience-API-Version") });
    };
    if (step.op === "about") {
      lrs.about({ callback: done });
    } else if (step.op === "put") {
      lrs.saveStatement(new TinCan.Statement(step.statement), { callback: done });
    } else if (step.op === "post") {
      // Without an id TinCan POSTs: the LRS assigns it.
      lrs.saveStatement(new TinCan.Statement(step.statement, { doStamp: false }), { callback: done });
    } else if (step.op === "postMany") {
      lrs.saveStatements(step.statements.map((s) => new TinCan.Statement(s)), { callback: done });
    } else if (step.op === "void") {
      const voiding = new TinCan.Statement({
        actor: step.actor,
        verb: { id: VOIDED },
        target: new TinCan.StatementRef({ id: step.statementId }),
      });
      lrs.saveStatement(voiding, { callback: done });
    } else {
      resolve({ status: 0, body: `unknown op ${step.op}` });
    }
  });
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const results = [];
  for (const step of spec.steps) {
    results.push(await (step.client === "tincan" ? tincan : xapijs)(spec.endpoint, step));
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}

main().catch((error) => {
  process.stderr.write(`clients.js failed: ${error && error.stack ? error.stack : JSON.stringify(error)}\n`);
  process.exit(1);
});
