// InlineText<Capacity>: a text of at most Capacity bytes held inside the object, never on the
// heap. Snapshot's texts are of this type so that reading the record allocates nothing, however
// long its URLs are: a std::string keeps only 15 bytes inline.
//
// It reads like a const std::string: it converts implicitly to std::string_view and to
// std::string, compares with either, with a C string and with another InlineText, streams with
// <<, concatenates with + into a std::string, and has size(), empty(), data(), c_str(), begin()
// and end(). It is always NUL-terminated. Copies copy the bytes in use, not the capacity.
//
//   Snapshot s = view.snapshot();
//   if (s.leader_app_address != self_url) Forward(std::string(s.leader_app_address));
//   std::string_view id = s.leader_id;  // valid while `s` lives and is not assigned
//
// A text longer than Capacity, when assigned, is cut to Capacity bytes at a UTF-8 character
// boundary, as the record cuts what the agent publishes.
//
// Thread safety: as for a std::string; const methods may be called from any number of threads.
#ifndef INSTAFACE_INLINE_TEXT_H_
#define INSTAFACE_INLINE_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace instaface {

namespace internal {
struct InlineTextAccess;  // libinstaface's reader fills the bytes straight from the record
}

template <size_t Capacity>
class InlineText {
 public:
  static_assert(Capacity > 0 && Capacity % 8 == 0, "a whole number of the record's words");

  InlineText() noexcept { bytes_[0] = '\0'; }
  // Like std::string, implicit from a C string (so `ok ? text : "-"` compiles) and explicit from
  // anything else that is text.
  // NOLINTNEXTLINE(google-explicit-constructor)
  InlineText(const char* text) noexcept { assign(std::string_view(text)); }
  explicit InlineText(std::string_view text) noexcept { assign(text); }
  InlineText(const InlineText& other) noexcept { CopyFrom(other); }
  InlineText& operator=(const InlineText& other) noexcept {
    if (this != &other) CopyFrom(other);
    return *this;
  }
  InlineText& operator=(std::string_view text) noexcept { return assign(text); }
  InlineText& operator=(const char* text) noexcept { return assign(std::string_view(text)); }

  // Keeps at most Capacity bytes of `text`, cut before any UTF-8 sequence that does not fit.
  InlineText& assign(std::string_view text) noexcept {
    size_t n = text.size();
    if (n > Capacity) {
      n = Capacity;
      while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    }
    std::memmove(bytes_, text.data(), n);
    bytes_[n] = '\0';
    size_ = static_cast<Size>(n);
    return *this;
  }
  void clear() noexcept {
    size_ = 0;
    bytes_[0] = '\0';
  }

  static constexpr size_t capacity() noexcept { return Capacity; }
  size_t size() const noexcept { return size_; }
  size_t length() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const char* data() const noexcept { return bytes_; }
  const char* c_str() const noexcept { return bytes_; }
  const char* begin() const noexcept { return bytes_; }
  const char* end() const noexcept { return bytes_ + size_; }
  char operator[](size_t i) const noexcept { return bytes_[i]; }

  std::string_view view() const noexcept { return std::string_view(bytes_, size_); }
  // NOLINTNEXTLINE(google-explicit-constructor)
  operator std::string_view() const noexcept { return view(); }
  // NOLINTNEXTLINE(google-explicit-constructor)
  operator std::string() const { return std::string(bytes_, size_); }

  // Comparisons: with another InlineText (below), a std::string or std::string_view, or a C
  // string.
  friend bool operator==(const InlineText& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(std::string_view a, const InlineText& b) noexcept { return a == b.view(); }
  friend bool operator==(const InlineText& a, const char* b) noexcept { return a.view() == b; }
  friend bool operator==(const char* a, const InlineText& b) noexcept { return a == b.view(); }
  friend bool operator!=(const InlineText& a, std::string_view b) noexcept { return !(a == b); }
  friend bool operator!=(std::string_view a, const InlineText& b) noexcept { return !(a == b); }
  friend bool operator!=(const InlineText& a, const char* b) noexcept { return !(a == b); }
  friend bool operator!=(const char* a, const InlineText& b) noexcept { return !(a == b); }

  // Concatenation makes a std::string, as `std::string + std::string` does.
  friend std::string operator+(const std::string& a, const InlineText& b) {
    return std::string(a).append(b.view());
  }
  friend std::string operator+(std::string&& a, const InlineText& b) {
    return std::move(a.append(b.view()));
  }
  friend std::string operator+(const char* a, const InlineText& b) {
    return std::string(a).append(b.view());
  }
  friend std::string operator+(const InlineText& a, std::string_view b) {
    return std::string(a.view()).append(b);
  }
  friend std::string operator+(const InlineText& a, const char* b) {
    return std::string(a.view()).append(b);
  }

  friend std::ostream& operator<<(std::ostream& out, const InlineText& text) {
    return out << text.view();
  }

 private:
  friend struct internal::InlineTextAccess;
  using Size = std::conditional_t<Capacity <= UINT8_MAX, uint8_t, uint32_t>;

  void CopyFrom(const InlineText& other) noexcept {
    std::memcpy(bytes_, other.bytes_, other.size_ + 1);  // with its NUL
    size_ = other.size_;
  }

  // Word-aligned, so that the reader stores the record's 8-byte words into it as they are; one
  // byte more than the capacity for the NUL of a text that fills it. Bytes past the NUL are
  // indeterminate: nothing reads them.
  alignas(8) char bytes_[Capacity + 1];
  Size size_ = 0;
};

template <size_t N, size_t M>
bool operator==(const InlineText<N>& a, const InlineText<M>& b) noexcept {
  return a.view() == b.view();
}
template <size_t N, size_t M>
bool operator!=(const InlineText<N>& a, const InlineText<M>& b) noexcept {
  return a.view() != b.view();
}
template <size_t N, size_t M>
std::string operator+(const InlineText<N>& a, const InlineText<M>& b) {
  return std::string(a.view()).append(b.view());
}

}  // namespace instaface

#endif  // INSTAFACE_INLINE_TEXT_H_
