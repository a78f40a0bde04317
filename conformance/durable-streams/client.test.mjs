// Exercises the official Durable Streams client (@durable-streams/client) against a
// server: create, append, catch-up read, long-poll tail, SSE tail, IdempotentProducer,
// close and delete.
//
//   DS_BASE_URL=http://127.0.0.1:4437 node --test client.test.mjs
//
// DS_BASE_URL is the server root; streams live under /v1/stream/<name>.
import { test } from "node:test"
import assert from "node:assert/strict"
import {
  DurableStream,
  IdempotentProducer,
  StaleEpochError,
} from "@durable-streams/client"

const base = process.env.DS_BASE_URL ?? `http://127.0.0.1:4437`
const url = (name) =>
  `${base}/v1/stream/client-${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`

// Resolves with the first value `pick` returns for a chunk, or rejects after `ms`.
function firstMatching(subscribe, pick, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    subscribe((chunk) => {
      const value = pick(chunk)
      if (value !== undefined) {
        clearTimeout(timer)
        resolve(value)
      }
    })
  })
}

test(`create makes a stream visible to HEAD with its content type`, async () => {
  const handle = await DurableStream.create({ url: url(`create`), contentType: `text/plain` })
  const head = await handle.head()
  assert.equal(head.exists, true)
  assert.equal(head.contentType, `text/plain`)
  assert.equal(head.streamClosed, false)
  assert.ok(head.offset, `HEAD carries a tail offset`)
})

test(`append then catch-up read returns the appended bytes and a resumable offset`, async () => {
  const handle = await DurableStream.create({ url: url(`catchup`), contentType: `text/plain` })
  await handle.append(`hello `)
  await handle.append(`world`)

  const first = await handle.stream({ live: false })
  assert.equal(await first.text(), `hello world`)
  assert.equal(first.upToDate, true)
  const resumeAt = first.offset

  await handle.append(`!`)
  const rest = await handle.stream({ offset: resumeAt, live: false })
  assert.equal(await rest.text(), `!`)
})

test(`catch-up read of a JSON stream returns the appended values`, async () => {
  const handle = await DurableStream.create({ url: url(`json`), contentType: `application/json` })
  await handle.append(JSON.stringify({ n: 1 }))
  await handle.append(JSON.stringify([`a`, `b`]))
  const res = await handle.stream({ live: false })
  assert.deepEqual(await res.json(), [{ n: 1 }, [`a`, `b`]])
})

test(`long-poll tail delivers an append made while waiting`, async () => {
  const handle = await DurableStream.create({ url: url(`longpoll`), contentType: `text/plain` })
  await handle.append(`old`)
  const tail = (await handle.head()).offset

  const res = await handle.stream({ offset: tail, live: `long-poll` })
  try {
    const got = firstMatching(
      (fn) => res.subscribeText(fn),
      (chunk) => (chunk.text.length > 0 ? chunk.text : undefined)
    )
    await new Promise((r) => setTimeout(r, 300))
    await handle.append(`new`)
    assert.equal(await got, `new`)
  } finally {
    res.cancel()
  }
})

test(`SSE tail delivers appends made after subscribing`, async () => {
  const handle = await DurableStream.create({ url: url(`sse`), contentType: `application/json` })
  await handle.append(JSON.stringify({ old: true }))
  const tail = (await handle.head()).offset

  const res = await handle.stream({ offset: tail, live: `sse` })
  try {
    const got = firstMatching(
      (fn) => res.subscribeJson(fn),
      (batch) => (batch.items.length > 0 ? batch.items : undefined)
    )
    await new Promise((r) => setTimeout(r, 300))
    await handle.append(JSON.stringify({ fresh: 1 }))
    assert.deepEqual(await got, [{ fresh: 1 }])
  } finally {
    res.cancel()
  }
})

test(`IdempotentProducer writes in order, fences a stale epoch, and closes the stream`, async () => {
  const handle = await DurableStream.create({ url: url(`producer`), contentType: `application/json` })
  const errors = []
  const producer = new IdempotentProducer(handle, `client-test-producer`, {
    epoch: 0,
    lingerMs: 1,
    onError: (e) => errors.push(e),
  })
  for (let i = 0; i < 5; i++) producer.append(JSON.stringify({ i }))
  await producer.flush()
  assert.deepEqual(errors, [])
  assert.ok(producer.lastSuccessfulOffset, `producer saw a server offset`)

  // A newer session of the same producer id takes over; the old epoch is fenced.
  const successor = new IdempotentProducer(handle, `client-test-producer`, { epoch: 1, lingerMs: 1 })
  successor.append(JSON.stringify({ i: 5 }))
  await successor.flush()

  const zombieErrors = []
  const zombie = new IdempotentProducer(handle, `client-test-producer`, {
    epoch: 0,
    lingerMs: 1,
    onError: (e) => zombieErrors.push(e),
  })
  zombie.append(JSON.stringify({ zombie: true }))
  await zombie.flush().catch((e) => zombieErrors.push(e))
  assert.ok(
    zombieErrors.some((e) => e instanceof StaleEpochError),
    `stale epoch rejected: ${zombieErrors.map(String).join(`; `)}`
  )

  const closed = await successor.close(JSON.stringify({ final: true }))
  assert.ok(closed.finalOffset)

  const res = await handle.stream({ live: false })
  assert.deepEqual(await res.json(), [
    { i: 0 },
    { i: 1 },
    { i: 2 },
    { i: 3 },
    { i: 4 },
    { i: 5 },
    { final: true },
  ])
  const head = await handle.head()
  assert.equal(head.streamClosed, true)
})

test(`close ends the stream: appends are refused, readers see EOF`, async () => {
  const handle = await DurableStream.create({ url: url(`close`), contentType: `text/plain` })
  await handle.append(`last words`)
  const { finalOffset } = await handle.close()
  assert.ok(finalOffset)
  assert.equal((await handle.head()).streamClosed, true)

  // close() without a body is idempotent
  const again = await handle.close()
  assert.equal(again.finalOffset, finalOffset)

  await assert.rejects(handle.append(`more`))

  const res = await handle.stream({ live: false })
  assert.equal(await res.text(), `last words`)
  assert.equal(res.streamClosed, true)

  // a live (long-poll) session started at the end of a closed stream ends at once
  // instead of waiting for data that can never come
  const started = Date.now()
  const live = await handle.stream({ offset: finalOffset, live: `long-poll` })
  await live.closed
  assert.equal(live.streamClosed, true)
  assert.ok(Date.now() - started < 5_000, `long-poll on a closed stream did not wait`)
})

test(`delete removes the stream`, async () => {
  const handle = await DurableStream.create({ url: url(`delete`), contentType: `text/plain` })
  await handle.append(`doomed`)
  await handle.delete()
  assert.equal((await handle.head()).exists, false)
  await assert.rejects(handle.stream({ live: false }))
})
