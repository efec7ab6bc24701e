// BullMQ side of the peer benchmark: same arguments and JSON line as drivers/_common.py.
// node driver.mjs --url URL --queue NAME --scenario S --jobs N [--concurrency C] [--timeout T]
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const IN_FLIGHT = 200;

function parseArgs(argv) {
  const args = { concurrency: 1, timeout: 120 };
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1];
  args.jobs = Number(args.jobs);
  args.concurrency = Number(args.concurrency);
  args.timeout = Number(args.timeout);
  return args;
}

function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function versions() {
  const pkg = JSON.parse(readFileSync(new URL("./node_modules/bullmq/package.json", import.meta.url)));
  const ioredis = JSON.parse(readFileSync(new URL("./node_modules/ioredis/package.json", import.meta.url)));
  return { node: process.versions.node, bullmq: pkg.version, ioredis: ioredis.version };
}

async function produce(queue, scenario, jobs) {
  const start = performance.now();
  if (scenario === "add_bulk" || scenario === "fill") {
    await queue.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: "noop", data: { i } })));
  } else if (scenario === "add_concurrent") {
    let next = 0;
    const lane = async () => {
      while (next < jobs) await queue.add("noop", { i: next++ });
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, jobs) }, lane));
  } else if (scenario === "add_sequential") {
    for (let i = 0; i < jobs; i++) await queue.add("noop", { i });
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  return (performance.now() - start) / 1000;
}

async function work(connection, args) {
  let completed = 0;
  let end = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));
  const start = performance.now();
  const worker = new Worker(args.queue, async () => {}, {
    connection,
    concurrency: args.concurrency,
    autorun: false,
  });
  worker.on("completed", () => {
    completed += 1;
    if (completed === args.jobs) {
      end = performance.now();
      resolveDone(true);
    }
  });
  worker.run();
  const timer = new Promise((resolve) => setTimeout(() => resolve(false), args.timeout * 1000));
  const finished = await Promise.race([done, timer]);
  if (!finished) end = performance.now();
  return { seconds: (end - start) / 1000, completed };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = new URL(args.url.replace(/^valkey:/, "redis:"));
  // BullMQ's docs for native ESM: pass a constructed ioredis client (the Worker duplicates it
  // for its blocking connection).
  const connection = new IORedis({ host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null });
  const report = { jobs: args.jobs, versions: versions() };
  if (args.scenario === "work") {
    Object.assign(report, await work(connection, args));
  } else {
    const queue = new Queue(args.queue, { connection });
    await queue.waitUntilReady();
    report.seconds = await produce(queue, args.scenario, args.jobs);
    report.completed = args.jobs;
  }
  emit(report);
  process.exit(0); // the queue is flushed after each scenario: no graceful shutdown needed
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
