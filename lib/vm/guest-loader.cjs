'use strict';
// The guest bundle's entry point (lib/vm/guest-bundle.ts copies it into the
// bundle's folder as main.cjs). It runs bundle.js, beside it, through V8's
// code cache bundle.js.cache, which the host made with this same Node binary
// by running the bundle once (`run` of every profile with no test selected):
// the guest then deserializes the bytecode of everything that run compiled instead of
// parsing and compiling 2.4 MB of JavaScript under TCG, where that cost about
// half a second of each boot (docs/performance.md, "Boot to first test").
// Node 20 has no compile cache of its own (module.enableCompileCache is 22.1+),
// hence vm.Script and its cachedData.
//
// With IOMMUFD_CONFORMANCE_WRITE_CODE_CACHE=1 it compiles without the cache
// and writes one when the process exits with 0.
//
// With IOMMUFD_CONFORMANCE_START_FD=N (the guest's init, lib/vm/guest-init.sh,
// starts the suites' job while it is still mounting) it evaluates the bundle,
// then waits for one byte on fd N before it runs the CLI: the init writes it
// once every mount is made and checked. Node's own start (under TCG mostly
// QEMU translating the code it runs for the first time) and the bundle's
// load so overlap the mount processes.
const { closeSync, readFileSync, readSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
const { createRequire } = require('node:module');

const file = join(__dirname, 'bundle.js');
const cacheFile = `${file}.cache`;
const writeCache = process.env.IOMMUFD_CONFORMANCE_WRITE_CODE_CACHE === '1';
let cachedData;
if (!writeCache) {
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache (the host could not make one): compile here
  }
}
// bundle.js is a function expression, CommonJS's wrapper around the code (lib/vm/guest-bundle.ts), with every
// non-ASCII character of its code escaped: read as latin1 (one byte a character, no UTF-8 to decode; only
// comments can hold UTF-8, which this turns into other characters of the same comments) and compiled as read.
const script = new Script(readFileSync(file, 'latin1'), { filename: file, cachedData });
if (cachedData && script.cachedDataRejected) {
  process.stderr.write(`guest bundle: V8 rejected the code cache ${cacheFile} (made by another Node binary or with other V8 flags): compiling here\n`);
}
if (writeCache) {
  process.once('exit', (code) => {
    if (code === 0) writeFileSync(cacheFile, script.createCachedData());
  });
}
const module_ = { exports: {} };
script.runInThisContext()(module_.exports, createRequire(file), module_, file, __dirname);

const startFd = process.env.IOMMUFD_CONFORMANCE_START_FD;
if (startFd !== undefined) {
  // Not for this process's children (the CLI run as a user would, by some tests): they have no such fd.
  delete process.env.IOMMUFD_CONFORMANCE_START_FD;
  const fd = Number(startFd);
  let n = 0;
  try {
    n = readSync(fd, Buffer.alloc(1));
  } catch (err) {
    process.stderr.write(`guest bundle: cannot read the init's go on fd ${fd}: ${err.message}\n`);
  }
  try {
    closeSync(fd);
  } catch {
    // not open: said above
  }
  if (n !== 1) {
    process.stderr.write(`guest bundle: the init closed fd ${fd} without starting the job (its mounts failed?)\n`);
    process.exit(1);
  }
}
module_.exports.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
