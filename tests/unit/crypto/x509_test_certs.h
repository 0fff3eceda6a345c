// Throwaway X.509 material for tests of the WebPKI TLS profile: a CA and leaves it signed, made
// in memory with GnuTLS (ECDSA P-256, SHA-256), exported as PEM. Nothing touches the disk.
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

namespace iroh::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

// One certificate: a CA (is_ca) or a TLS server leaf carrying the given DNS / IP SANs (IPs as
// raw 4 or 16 bytes), signed by `issuer` (self-signed when null).
struct X509Maker {
  struct Options {
    std::string common_name;
    bool is_ca = false;
    std::vector<std::string> dns_names;
    std::vector<std::vector<unsigned char>> ips;
    long not_before_offset = -3600;  // seconds relative to now
    long not_after_offset = 86400;
  };

  static Options ca(std::string name) {
    Options o;
    o.common_name = std::move(name);
    o.is_ca = true;
    return o;
  }
  static Options leaf(std::string name, std::vector<std::string> dns,
                      std::vector<std::vector<unsigned char>> ips = {}) {
    Options o;
    o.common_name = std::move(name);
    o.dns_names = std::move(dns);
    o.ips = std::move(ips);
    return o;
  }

  static void check(int rv, const char* what) {
    if (rv < 0) throw std::runtime_error(std::string(what) + ": " + gnutls_strerror(rv));
  }

  static std::string export_pem_crt(gnutls_x509_crt_t crt) {
    gnutls_datum_t out{};
    check(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), "crt export");
    std::string s(reinterpret_cast<const char*>(out.data), out.size);
    gnutls_free(out.data);
    return s;
  }
  static std::string export_pem_key(gnutls_x509_privkey_t key) {
    gnutls_datum_t out{};
    check(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out), "key export");
    std::string s(reinterpret_cast<const char*>(out.data), out.size);
    gnutls_free(out.data);
    return s;
  }

  // Makes a certificate; `issuer` (cert + key PEM) signs it, or it signs itself.
  static TestCert make(const Options& o, const TestCert* issuer = nullptr) {
    gnutls_x509_privkey_t key;
    check(gnutls_x509_privkey_init(&key), "privkey init");
    check(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
          "privkey generate");
    gnutls_x509_crt_t crt;
    check(gnutls_x509_crt_init(&crt), "crt init");
    check(gnutls_x509_crt_set_version(crt, 3), "version");
    static unsigned serial_counter = 1;
    const unsigned char serial[4] = {0x10, 0, 0, static_cast<unsigned char>(serial_counter++)};
    check(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "serial");
    const time_t now = time(nullptr);
    check(gnutls_x509_crt_set_activation_time(crt, now + o.not_before_offset), "activation");
    check(gnutls_x509_crt_set_expiration_time(crt, now + o.not_after_offset), "expiration");
    check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, o.common_name.data(),
                                        static_cast<unsigned>(o.common_name.size())),
          "dn");
    check(gnutls_x509_crt_set_key(crt, key), "set key");
    if (o.is_ca) {
      check(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), "basic constraints");
      check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
            "key usage");
    } else {
      check(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "basic constraints");
      check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "key usage");
      check(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), "purpose");
      for (const auto& d : o.dns_names) {
        check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, d.data(),
                                                   static_cast<unsigned>(d.size()),
                                                   GNUTLS_FSAN_APPEND),
              "dns san");
      }
      for (const auto& ip : o.ips) {
        check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip.data(),
                                                   static_cast<unsigned>(ip.size()),
                                                   GNUTLS_FSAN_APPEND),
              "ip san");
      }
    }
    if (issuer) {
      gnutls_x509_crt_t icrt;
      gnutls_x509_privkey_t ikey;
      check(gnutls_x509_crt_init(&icrt), "issuer init");
      check(gnutls_x509_privkey_init(&ikey), "issuer key init");
      const gnutls_datum_t ic{
          reinterpret_cast<unsigned char*>(const_cast<char*>(issuer->cert_pem.data())),
          static_cast<unsigned>(issuer->cert_pem.size())};
      const gnutls_datum_t ik{
          reinterpret_cast<unsigned char*>(const_cast<char*>(issuer->key_pem.data())),
          static_cast<unsigned>(issuer->key_pem.size())};
      check(gnutls_x509_crt_import(icrt, &ic, GNUTLS_X509_FMT_PEM), "issuer import");
      check(gnutls_x509_privkey_import(ikey, &ik, GNUTLS_X509_FMT_PEM), "issuer key import");
      check(gnutls_x509_crt_sign2(crt, icrt, ikey, GNUTLS_DIG_SHA256, 0), "sign");
      gnutls_x509_crt_deinit(icrt);
      gnutls_x509_privkey_deinit(ikey);
    } else {
      check(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), "self-sign");
    }
    TestCert out{export_pem_crt(crt), export_pem_key(key)};
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return out;
  }
};

// A CA and a leaf for "relay.test" and 127.0.0.1 / ::1, made once per process.
struct TestPki {
  TestCert ca;
  TestCert leaf;
  TestCert other_ca;  // trusts nothing above

  static const TestPki& get() {
    static const TestPki pki = [] {
      TestPki p;
      p.ca = X509Maker::make(X509Maker::ca("irohlab test CA"));
      p.other_ca = X509Maker::make(X509Maker::ca("unrelated CA"));
      std::vector<unsigned char> v6(16, 0);
      v6[15] = 1;
      p.leaf = X509Maker::make(X509Maker::leaf("relay.test", {"relay.test"}, {{127, 0, 0, 1}, v6}),
                               &p.ca);
      return p;
    }();
    return pki;
  }
};

}  // namespace iroh::testing
