// A session of IronWorker's official Node client (iron_worker@0.1.8, unmodified) against `longshore api`.
// Configured from IRON_HOST, IRON_PORT, IRON_PROJECT_ID, IRON_TOKEN, IRON_SCHEME; prints one JSON report.
'use strict';
const iron = require('iron_worker');

const options = {host: process.env.IRON_HOST, port: Number(process.env.IRON_PORT), scheme: process.env.IRON_SCHEME,
                 project_id: process.env.IRON_PROJECT_ID, token: process.env.IRON_TOKEN};
const client = new iron.Client(options);
const call = (target, method, ...args) => new Promise((resolve, reject) =>
  target[method](...args, (error, body) => (error ? reject(error) : resolve(body))));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const report = {};
  const echo = await call(client, 'tasksCreate', 'echo', JSON.stringify({n: 2}), {priority: 1, label: 'node'});
  report.echo = (await call(client, 'tasksWaitFor', echo.id, {})).status;
  report.log = await call(client, 'tasksWaitForLog', echo.id, {});
  report.listed = (await call(client, 'tasksList', {code_name: 'echo', complete: 1})).map((task) => task.id)
    .includes(echo.id);
  const failing = await call(client, 'tasksCreate', 'fail', '', {});
  report.failed = (await call(client, 'tasksWaitFor', failing.id, {})).status;
  const sleeper = await call(client, 'tasksCreate', 'sleeper', '', {});
  for (let i = 0; i < 120 && (await call(client, 'tasksGet', sleeper.id)).status !== 'running'; i++) await sleep(250);
  await call(client, 'tasksSetProgress', sleeper.id, {percent: 70, msg: 'from node'});
  const shown = await call(client, 'tasksGet', sleeper.id);
  report.progress = [shown.percent, shown.msg];
  await call(client, 'tasksCancel', sleeper.id);
  report.cancelled = (await call(client, 'tasksWaitFor', sleeper.id, {})).status;
  const retried = await call(client, 'tasksRetry', echo.id, 0);
  report.retried = (await call(client, 'tasksWaitFor', retried.tasks[0].id, {})).status;
  report.codes = (await call(client, 'codesList', {})).map((code) => code.name).sort();
  const schedule = await call(client, 'schedulesCreate', 'echo', {from: 'node'},
                              {run_every: 3600, start_at: new Date(Date.now() + 3600e3).toISOString()});
  report.scheduled = (await call(client, 'schedulesList', {})).map((s) => s.id).includes(schedule.id);
  await call(client, 'schedulesCancel', schedule.id);
  report.clusters = await call(client, 'clustersList', {});
  const stranger = new iron.Client({...options, token: 'not-a-token'});
  report.wrongToken = await call(stranger, 'tasksList', {}).then(() => 'accepted', (error) => error.message);
  console.log(JSON.stringify(report));
}

main().catch((error) => { console.error(error && error.stack ? error.stack : error); process.exit(1); });
