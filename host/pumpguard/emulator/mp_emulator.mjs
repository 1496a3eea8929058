// The emulated board on the real MicroPython (WebAssembly build): one interpreter,
// the whole firmware, run by pumpguard/emulator/micropython.py (never by hand).
//
//   node mp_emulator.mjs INTERPRETER BUNDLE_DIR BOARD BOOT_ID
//
// INTERPRETER is the npm package's entry module (micropython.mjs), found by micropython.py
// (the checkout's node_modules, or $PUMPGUARD_NODE_MODULES): imported by its path, since
// node would look for a bare package name only above this script (site-packages, when
// pumpguard is installed).
//
// The interpreter's filesystem is the bundle, laid out as a flashed board holds it
// (main.py, firmware/*.mpy, druglib.json, manifest.json...): what runs is what
// `pumpguard flash` would write. firmware.main.boot() then starts the firmware on the
// emulator board's ports, which relay to the host over this process's stdin/stdout,
// one JSON line per message (the protocol is described in boards/emulator/relay.py). The relay is synchronous: the
// interpreter blocks in readSync() until the host answers, so a loop turn runs as on
// a board, blocking in its clock's sleep_ms(). MicroPython's own output goes to stderr.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [interpreter, bundleDir, board, bootId] = process.argv.slice(2);
if (!interpreter || !bundleDir || !board || !bootId) {
  process.stderr.write("usage: node mp_emulator.mjs INTERPRETER BUNDLE_DIR BOARD BOOT_ID\n");
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(interpreter).href);

const toStderr = (line) => process.stderr.write(line + "\n");
const mp = await loadMicroPython({ stdout: toStderr, stderr: toStderr });

function copyTree(srcDir, dstDir) {
  for (const name of fs.readdirSync(srcDir).sort()) {
    const src = path.join(srcDir, name);
    const dst = dstDir + name;
    if (fs.statSync(src).isDirectory()) {
      mp.FS.mkdir(dst);
      copyTree(src, dst + "/");
    } else {
      mp.FS.writeFile(dst, fs.readFileSync(src));
    }
  }
}
copyTree(bundleDir, "/");

const chunk = Buffer.alloc(65536);
let pending = "";
function readLine() {
  for (;;) {
    const nl = pending.indexOf("\n");
    if (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return line;
    }
    let n;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (err) {
      if (err.code === "EAGAIN") continue; // a non-blocking pipe: wait for the host
      throw err;
    }
    if (n === 0) process.exit(0); // the host is gone (quit, or power loss)
    pending += chunk.toString("latin1", 0, n); // the host sends ASCII JSON only
  }
}

globalThis.bridge = {
  send(line) {
    fs.writeSync(1, line + "\n");
  },
  call(line) {
    fs.writeSync(1, line + "\n");
    return readLine();
  },
};

try {
  // bootId stays a string: JS would clip it to 31 bits on its way into Python.
  mp.globals.set("_BOARD", board);
  mp.globals.set("_BOOT_ID", bootId);
  mp.runPython("import firmware.main\n_SHELL = firmware.main.boot(_BOARD, int(_BOOT_ID))");
  const shell = mp.globals.get("_SHELL");
  if (shell === null || shell === undefined) process.exit(0); // a safe boot: the board sits at its REPL
  // firmware.main.run()'s loop, one call per turn: this WebAssembly build collects
  // garbage only when no Python code is running, so a loop inside one call would grow
  // the heap for ever.
  const turn = shell.turn;
  for (;;) turn();
} catch (err) {
  process.stderr.write(String(err.message || err) + "\n");
  process.exit(1);
}
