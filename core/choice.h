// An option with a fixed set of named values: an enum in code, a name in YAML, on the command line and in messages.
// Names are resolved once, where the option is read; code downstream switches on the enum and never compares text.
#pragma once
#include <array>
#include <ostream>
#include <string>

#include "core/errors.h"

namespace tern {

// Each enum used in a Choice specialises this with its names, in the order of the enum's values (0, 1, ...):
//   template <> struct ChoiceNames<Cell> { static constexpr std::array<const char*, 2> kNames{"lstm", "gru"}; };
template <typename E>
struct ChoiceNames;

// The name of an enum value ("lstm" for Cell::kLstm).
template <typename E>
const char* choice_name(E value) {
  return ChoiceNames<E>::kNames.at(static_cast<size_t>(value));
}

// "a, b or c": the allowed names for a message.
template <typename E>
std::string choice_list() {
  const auto& names = ChoiceNames<E>::kNames;
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += std::string(i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

// The value named `name`; a name not in the set throws ConfigError "<key> must be a, b or c (got x)".
template <typename E>
E parse_choice(const std::string& name, const std::string& key) {
  const auto& names = ChoiceNames<E>::kNames;
  for (size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return static_cast<E>(i);
  throw ConfigError(fmt::format("{} must be {} (got {})", key, choice_list<E>(), name.empty() ? "''" : name));
}

// A config field holding one of E's values. Assigning a name (as YAML and tests do) keeps an unknown name as text
// so that the struct's validate() can report it with its key; reading the value of an unknown name is an error.
template <typename E>
class Choice {
 public:
  Choice(E value) : value_(value) {}  // NOLINT(google-explicit-constructor): fields read like plain enums
  Choice(const std::string& name) { assign(name); }  // NOLINT(google-explicit-constructor)
  Choice(const char* name) { assign(name); }         // NOLINT(google-explicit-constructor)

  bool known() const { return known_; }
  // The value; throws ConfigError when an unknown name was assigned and never validated.
  E value() const {
    if (!known()) throw ConfigError(fmt::format("'{}' is not one of {}", unknown_, choice_list<E>()));
    return value_;
  }
  operator E() const { return value(); }  // NOLINT(google-explicit-constructor): switch and == on the enum
  std::string name() const { return known() ? choice_name(value_) : unknown_; }
  // Throws ConfigError "<key> must be a, b or c (got x)" for an unknown name.
  void check(const std::string& key) const {
    if (!known()) parse_choice<E>(unknown_, key);
  }

  friend bool operator==(const Choice& a, E b) { return a.known() && a.value_ == b; }
  friend bool operator!=(const Choice& a, E b) { return !(a == b); }
  friend bool operator==(const Choice& a, const Choice& b) { return a.name() == b.name(); }
  friend bool operator!=(const Choice& a, const Choice& b) { return !(a == b); }
  friend bool operator==(const Choice& a, const char* name) { return a.name() == name; }
  friend bool operator!=(const Choice& a, const char* name) { return !(a == name); }
  friend std::ostream& operator<<(std::ostream& os, const Choice& c) { return os << c.name(); }

 private:
  void assign(const std::string& name) {
    const auto& names = ChoiceNames<E>::kNames;
    for (size_t i = 0; i < names.size(); ++i)
      if (name == names[i]) {
        value_ = static_cast<E>(i);
        known_ = true;
        unknown_.clear();
        return;
      }
    known_ = false;
    unknown_ = name;
  }
  E value_{};
  bool known_ = true;
  std::string unknown_;  // the assigned name when it is not one of E's names
};

}  // namespace tern

// fmt prints a Choice as its name.
template <typename E>
struct fmt::formatter<tern::Choice<E>> : fmt::formatter<std::string> {
  template <typename Context>
  auto format(const tern::Choice<E>& c, Context& ctx) const {
    return fmt::formatter<std::string>::format(c.name(), ctx);
  }
};
