// No queue: COUNT of the same Twilio calls, BULLMQ_CONCURRENCY in flight, to see how fast the fake server itself
// answers (`node direct.js COUNT`). Prints one JSON line: requests, failures, seconds.
"use strict";

const { concurrency, agent, createMessage } = require("./twilio_call");

async function main() {
  const count = Number(process.argv[2]);
  let next = 0;
  let failures = 0;
  const started = process.hrtime.bigint();
  async function lane() {
    while (next < count) {
      const i = next++;
      try {
        await createMessage({ id: i + 1, to: `+1415${7000000 + i}`, body: `Bench ${i}` });
      } catch {
        failures++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  console.log(JSON.stringify({ requests: count, failures, seconds }));
}

main();
