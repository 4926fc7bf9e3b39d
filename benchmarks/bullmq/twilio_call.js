// The HTTP call our SMS send makes, as the twilio client makes it: a form-encoded POST to Twilio's Messages.json
// with To, From, Body and StatusCallback, basic auth, keep-alive connections. Configured by the environment run.py sets.
"use strict";

const http = require("node:http");

const concurrency = Number(process.env.BULLMQ_CONCURRENCY || 100);
const api = new URL(
  `/2010-04-01/Accounts/${process.env.TWILIO_ACCOUNT_SID}/Messages.json`,
  process.env.TWILIO_API_BASE_URL,
);
const authorization =
  "Basic " + Buffer.from(`${process.env.TWILIO_ACCOUNT_SID}:${process.env.TWILIO_AUTH_TOKEN}`).toString("base64");
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function createMessage({ id, to, body }) {
  const form = new URLSearchParams({
    To: to,
    From: process.env.TWILIO_FROM_NUMBER,
    Body: body,
    StatusCallback: `${process.env.STATUS_CALLBACK_URL}?message=${id}&attempt=1`,
  }).toString();
  return new Promise((resolve, reject) => {
    const request = http.request(
      api,
      {
        method: "POST",
        agent,
        timeout: 10000,
        headers: {
          Authorization: authorization,
          Accept: "application/json",
          "Content-Type": "application/x-www-form-urlencoded",
          "Content-Length": Buffer.byteLength(form),
        },
      },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          if (response.statusCode !== 201) {
            reject(new Error(`Twilio answered ${response.statusCode}`));
            return;
          }
          resolve(JSON.parse(Buffer.concat(chunks).toString()).sid);
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", reject);
    request.end(form);
  });
}

module.exports = { concurrency, agent, createMessage };
