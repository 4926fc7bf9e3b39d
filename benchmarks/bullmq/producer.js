// Queues COUNT SMS jobs for worker.js, in bulk, before any worker starts (as the send_sms scenario stores and
// queues its messages first): `node producer.js COUNT`.
"use strict";

const { Queue } = require("bullmq");
const { QUEUE_NAME, redisConnection } = require("./common");

const CHUNK = 1000;

async function main() {
  const count = Number(process.argv[2]);
  const queue = new Queue(QUEUE_NAME, { connection: redisConnection() });
  for (let start = 0; start < count; start += CHUNK) {
    const jobs = [];
    for (let i = start; i < Math.min(start + CHUNK, count); i++) {
      // The same recipients and bodies as Bench.create_messages; the id stands in for our message id.
      jobs.push({ name: "sms", data: { id: i + 1, to: `+1415${7000000 + i}`, body: `Bench ${i}` }, opts: { removeOnComplete: true } });
    }
    await queue.addBulk(jobs);
  }
  await queue.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
