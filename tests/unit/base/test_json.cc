#include <gtest/gtest.h>

#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"

namespace dsv3 {
namespace {

TEST(Json, ParsesAndDumpsRoundTrip) {
  Json j = Json::parse(R"( {"a": [1, -2, 3.5e2, true, null], "b": {"c": "x\u00e9\n"}} )");
  EXPECT_EQ(j.at("a").as_array()[1].as_int(), -2);
  EXPECT_DOUBLE_EQ(j.at("a").as_array()[2].as_double(), 350.0);
  EXPECT_EQ(j.at("b").at("c").as_string(), "x\xc3\xa9\n");
  Json k = Json::parse(j.dump(2));
  EXPECT_EQ(k.dump(), j.dump());
}

TEST(Json, RejectsDuplicateKeysAndGarbage) {
  EXPECT_THROW(Json::parse(R"({"a": 1, "a": 2})"), Error);
  EXPECT_THROW(Json::parse("{"), Error);
  EXPECT_THROW(Json::parse("[1,]"), Error);
  EXPECT_THROW(Json::parse("01"), Error);
  EXPECT_THROW(Json::parse("\"\x01\""), Error);
  EXPECT_THROW(Json::parse(std::string(1000, '[')), Error);  // depth bound, no stack overflow
}

// As Python's json.dumps and JSON.stringify quote (Jinja's tojson reuses it): short escapes where
// JSON has them, \u00XX for the other control characters, UTF-8 passed through.
TEST(Json, QuoteEscapesAsPythonAndJavaScript) {
  EXPECT_EQ(json_quote("a\"b\\c\n\r\t\b\f\x01\x1f\x7f\xc3\xa9"),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\xc3\xa9\"");
}

TEST(Json, SurrogatePairsAndLoneSurrogates) {
  EXPECT_EQ(Json::parse(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(Json::parse(R"("\ud83d")").as_string(), "\xef\xbf\xbd");
}

TEST(Json, TypeErrorsNameTheField) {
  Json j = Json::parse(R"({"n": "x"})");
  try {
    j.at("n").as_int("config.json: hidden_size");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
  }
}

TEST(Rng, StateRestoresExactly) {
  Rng a(42);
  a.normal();  // leaves a spare normal pending
  Rng::State s = a.state();
  double x1 = a.normal(), x2 = a.normal();
  Rng b(7);
  b.set_state(s);
  EXPECT_EQ(b.normal(), x1);
  EXPECT_EQ(b.normal(), x2);
}

}  // namespace
}  // namespace dsv3
