// A small JSON reader and writer for the benchmark: enough for suite.json,
// the anchors file and the results the benchmark writes. Objects keep their
// keys in document order. No dependency beyond the standard library.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flashmla::bench {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // Object member by key, or nullptr (also for non-objects).
  const JsonValue* find(const std::string& key) const;
  // Convenience lookups with a fallback when the key is absent or has another type.
  double number_or(const std::string& key, double fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  bool bool_or(const std::string& key, bool fallback) const;

  static JsonValue make_null() { return JsonValue(); }
  static JsonValue make_bool(bool value);
  static JsonValue make_number(double value);
  static JsonValue make_string(std::string value);
  static JsonValue make_array(std::vector<JsonValue> items);
  static JsonValue make_object(std::vector<std::pair<std::string, JsonValue>> members);

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses a whole document. On failure returns false and sets *error to the
// reason and the line:column where parsing stopped.
bool parse_json(const std::string& text, JsonValue* out, std::string* error);

// Builds compact JSON text, one value at a time. Keys and values are written
// in call order; commas are inserted automatically.
//   JsonWriter w; w.begin_object(); w.key("a"); w.number(1); w.end_object();
class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  void key(const std::string& name);
  void string(const std::string& value);
  // Non-finite numbers (NaN, inf) are written as null: JSON has no spelling for them.
  void number(double value);
  void integer(int64_t value);
  void boolean(bool value);
  void null();
  // Appends an already serialized value (e.g. a shared "meta" object).
  void raw(const std::string& json);

  const std::string& str() const { return out_; }

 private:
  void before_value();

  std::string out_;
  std::vector<bool> first_in_scope_;
  bool after_key_ = false;
};

// The JSON spelling of a string, quotes included.
std::string json_quote(const std::string& value);

}  // namespace flashmla::bench
