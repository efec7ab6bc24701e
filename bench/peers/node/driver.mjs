// BullMQ side of the peer benchmark: same arguments and JSON line as drivers/_common.py.
// node driver.mjs --url URL --queue NAME --scenario S --jobs N [--concurrency C] [--timeout T] [--rate R]
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const IN_FLIGHT = 200;
const WARM_UP_MS = 2000; // an idle latency worker settles this long before it says it is ready
const latencies = []; // seconds from add to processor start

// Wall-clock seconds with sub-millisecond resolution (Date.now() has whole ms), comparable
// between processes as Python's time.time() is.
function wallClock() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

function percentiles(samples) {
  const ordered = [...samples].sort((a, b) => a - b);
  if (!ordered.length) return {};
  const at = (p) => Math.round(ordered[Math.min(ordered.length - 1, Math.floor((ordered.length * p) / 100))] * 1e6) / 1000;
  return { p50_ms: at(50), p90_ms: at(90), p99_ms: at(99), max_ms: Math.round(ordered[ordered.length - 1] * 1e6) / 1000 };
}

function cpuSeconds() {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e6;
}

function rssMb() {
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

// N single adds started at `rate` per second, each carrying its add time; returns the worst lag in s.
async function paced(queue, jobs, rate) {
  const start = performance.now();
  let worst = 0;
  const adds = [];
  for (let i = 0; i < jobs; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else worst = Math.max(worst, -wait / 1000);
    adds.push(queue.add("noop", { t: wallClock() }));
  }
  await Promise.all(adds);
  return worst;
}

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
  const cpuStart = cpuSeconds();
  const processor = async (job) => {
    if (job.data.t !== undefined) latencies.push(wallClock() - job.data.t);
  };
  const worker = new Worker(args.queue, processor, {
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
  if (args.scenario === "latency_work") {
    await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
    emit({ ready: true, rss_mb_idle: rssMb() });
  }
  const timer = new Promise((resolve) => setTimeout(() => resolve(false), args.timeout * 1000));
  const finished = await Promise.race([done, timer]);
  if (!finished) end = performance.now();
  const report = { seconds: (end - start) / 1000, completed, cpu_seconds: cpuSeconds() - cpuStart, rss_mb: rssMb() };
  if (args.scenario === "latency_work") Object.assign(report, { stamped: latencies.length }, percentiles(latencies));
  return report;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = new URL(args.url.replace(/^valkey:/, "redis:"));
  // BullMQ's docs for native ESM: pass a constructed ioredis client (the Worker duplicates it
  // for its blocking connection).
  const connection = new IORedis({ host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null });
  const report = { jobs: args.jobs, versions: versions() };
  if (args.scenario === "work" || args.scenario === "latency_work") {
    Object.assign(report, await work(connection, args));
  } else {
    const queue = new Queue(args.queue, { connection });
    await queue.waitUntilReady();
    if (args.scenario === "paced") {
      const start = performance.now();
      report.max_lag_ms = (await paced(queue, args.jobs, Number(args.rate ?? 500))) * 1000;
      report.seconds = (performance.now() - start) / 1000;
    } else {
      report.seconds = await produce(queue, args.scenario, args.jobs);
    }
    report.completed = args.jobs;
  }
  emit(report);
  process.exit(0); // the queue is flushed after each scenario: no graceful shutdown needed
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
