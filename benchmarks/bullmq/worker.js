// A BullMQ worker doing the HTTP call our SMS send makes (twilio_call.js) for each job, BULLMQ_CONCURRENCY at a
// time. It leaves once the queue is drained and its jobs in flight have finished: `node worker.js`.
"use strict";

const { Worker } = require("bullmq");
const { QUEUE_NAME, redisConnection } = require("./common");
const { concurrency, agent, createMessage } = require("./twilio_call");

const worker = new Worker(QUEUE_NAME, (job) => createMessage(job.data), {
  connection: redisConnection(),
  concurrency,
  removeOnComplete: { count: 0 },
});
worker.on("failed", (job, error) => console.error(`job ${job && job.id} failed: ${error.message}`));
worker.once("drained", async () => {
  await worker.close();
  agent.destroy();
  process.exit(0);
});
