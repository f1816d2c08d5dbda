/** The URL policy: schemes, metadata and link-local addresses, private ranges, allow/deny lists. */
import assert from "node:assert/strict";
import { createUrlPolicy, type UrlPolicyOptions } from "./url_policy.ts";

const policy = (o: Partial<UrlPolicyOptions> = {}) =>
  createUrlPolicy({ allowPrivate: true, allowHosts: [], denyHosts: [], ...o });

async function reason(p: ReturnType<typeof policy>, url: string): Promise<string | null> {
  const v = await p.check(url);
  return v.ok ? null : v.reason;
}

Deno.test("only http and https URLs pass", async () => {
  const p = policy();
  assert.equal(await reason(p, "http://127.0.0.1:8080/x"), null);
  assert.equal(await reason(p, "https://[::1]/"), null);
  assert.match((await reason(p, "ftp://127.0.0.1/"))!, /only http and https/);
  assert.match((await reason(p, "file:///etc/passwd"))!, /only http and https/);
  assert.match((await reason(p, "javascript:alert(1)"))!, /only http and https/);
  assert.match((await reason(p, "not a url"))!, /not a valid absolute URL/);
  assert.match((await reason(p, "http://user:pw@127.0.0.1/"))!, /user name or password/);
});

Deno.test("metadata and link-local addresses are always refused, in every spelling", async () => {
  const p = policy({ allowHosts: ["169.254.0.0/16"] });
  for (
    const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/",
      "http://[::ffff:169.254.169.254]/",
      "http://[fe80::1]/",
      "http://[64:ff9b::a9fe:a9fe]/", // NAT64
      "http://[64:ff9b:1::a9fe:a9fe]/", // local-use NAT64
      "http://[2002:a9fe:a9fe::]/", // 6to4
      "http://[::a9fe:a9fe]/", // IPv4-compatible
      "http://[::ffff:0:a9fe:a9fe]/", // IPv4-translated
      "http://[2001:0:a9fe:a9fe::1]/", // Teredo server
      "http://[2001:0:4136:e378:8000:63bf:5601:5601]/", // Teredo client (bits inverted)
    ]
  ) {
    assert.match((await reason(p, url))!, /link-local or cloud metadata/, url);
  }
  assert.match(
    (await reason(
      policy({ resolve: () => Promise.resolve(["64:ff9b::a9fe:a9fe"]) }),
      "http://n.test/",
    ))!,
    /resolves to 64:ff9b::a9fe:a9fe is a link-local or cloud metadata/,
  );
});

Deno.test("IPv6 forms that carry a public IPv4 address pass", async () => {
  const p = policy({ allowPrivate: false });
  for (const url of ["http://[64:ff9b::5db8:d822]/", "http://[2002:5db8:d822::1]/"]) {
    assert.equal(await reason(p, url), null, url);
  }
});

Deno.test("a host name is judged by the addresses it resolves to", async () => {
  const p = policy({
    resolve: (host) =>
      Promise.resolve(host === "metadata.internal.test" ? ["169.254.169.254"] : ["93.184.216.34"]),
  });
  assert.match(
    (await reason(p, "http://metadata.internal.test/"))!,
    /resolves to 169\.254\.169\.254/,
  );
  assert.equal(await reason(p, "http://example.test/"), null);
  const unresolvable = policy({ resolve: () => Promise.resolve([]) });
  assert.match((await reason(unresolvable, "http://nowhere.test/"))!, /does not resolve/);
});

Deno.test("private and loopback ranges can be switched off", async () => {
  const p = policy({ allowPrivate: false });
  for (
    const url of [
      "http://127.0.0.1/",
      "http://10.1.2.3/",
      "http://192.168.1.1/",
      "http://[::1]/",
      "http://localhost/",
      "http://[fd00::1]/",
      "http://[64:ff9b::7f00:1]/", // NAT64 of 127.0.0.1
      "http://[2002:a00:1::]/", // 6to4 of 10.0.0.1
      "http://[::c0a8:101]/", // IPv4-compatible 192.168.1.1
    ]
  ) {
    assert.match((await reason(p, url))!, /private or loopback/, url);
  }
  assert.equal(await reason(policy(), "http://10.1.2.3/"), null);
});

Deno.test("deny-list wins, allow-list limits, with exact, wildcard and CIDR entries", async () => {
  const p = policy({
    allowHosts: ["*.example.test", "10.0.0.0/8"],
    denyHosts: ["bad.example.test"],
    resolve: () => Promise.resolve(["93.184.216.34"]),
  });
  assert.equal(await reason(p, "http://www.example.test/"), null);
  assert.equal(await reason(p, "http://10.9.9.9/"), null);
  assert.match((await reason(p, "http://bad.example.test/"))!, /deny-list/);
  assert.match((await reason(p, "http://other.test/"))!, /not on the allow-list/);
});
