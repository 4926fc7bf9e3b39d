// Settings shared by producer.js and worker.js, all from the environment run.py sets.
"use strict";

function redisConnection() {
  const url = new URL(process.env.BULLMQ_REDIS_URL || "redis://127.0.0.1:6379/14");
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
  };
}

module.exports = {
  QUEUE_NAME: process.env.BULLMQ_QUEUE || "tidings-bench-sms",
  redisConnection,
};
