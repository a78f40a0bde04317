// Test helpers: build and run real `badbatch serve` processes.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the first directory upwards holding go.mod. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "go.mod"))) {
    const up = dirname(d);
    if (up === d) throw new Error("no go.mod above " + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
}

let built: string | undefined;

/** BADBATCH_BIN, or the server built once into a temporary directory. */
export function badbatchBin(): string {
  if (process.env.BADBATCH_BIN) return process.env.BADBATCH_BIN;
  if (built) return built;
  const out = join(mkdtempSync(join(tmpdir(), "bb-ts-bin-")), "badbatch");
  execFileSync("go", ["build", "-o", out, "./cmd/badbatch"], { cwd: repoRoot(), stdio: ["ignore", "inherit", "inherit"] });
  built = out;
  return out;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One server process on a fixed port and data directory, restartable. */
export class ServerProc {
  readonly url: string;
  readonly dataDir: string;
  private proc: ChildProcess | undefined;
  private log = "";

  private constructor(readonly port: number, private readonly args: string[]) {
    this.url = `http://127.0.0.1:${port}`;
    this.dataDir = mkdtempSync(join(tmpdir(), "bb-ts-data-"));
  }

  static async start(args: string[] = []): Promise<ServerProc> {
    const s = new ServerProc(await freePort(), args);
    await s.startProcess();
    return s;
  }

  private async startProcess(): Promise<void> {
    const argv = ["serve", "--data-dir", this.dataDir, "--addr", `127.0.0.1:${this.port}`, "--log-level", "warn", ...this.args];
    const p = spawn(badbatchBin(), argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = p;
    p.stderr!.on("data", (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-8000);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`badbatch exited ${p.exitCode}: ${this.log}`);
      try {
        const r = await fetch(this.url + "/readyz");
        await r.body?.cancel();
        if (r.status === 200) return;
      } catch {
        // not yet listening
      }
      if (Date.now() > deadline) throw new Error(`badbatch not ready on ${this.url}: ${this.log}`);
      await sleep(50);
    }
  }

  /** SIGTERM, wait for the exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(t);
  }

  /** Stops the server and starts it again on the same port and data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.startProcess();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  stderr(): string {
    return this.log;
  }
}
