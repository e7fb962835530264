"""Good answers in 15 languages (a short phrase, three sentences, a passage, a query, two labels), written by
hand for the tests that make sure the degenerate-output and language checks do not reject real rows, and
`answer(task, language)`: a good answer of every packaged task in that language."""

GOOD = {
    "English": {
        "phrase": "fresh mountain air",
        "sentences": [
            "The library opens at nine every morning except on Sundays.",
            "Every morning apart from Sunday, the library doors open at nine.",
            "The museum closes early on public holidays during the winter.",
        ],
        "passage": "Honeybees communicate the location of food through a waggle dance. The angle of the dance "
        "shows the direction relative to the sun, and its length tells the distance to the flowers.",
        "query": "why do bees dance",
        "labels": ["sports", "politics"],
    },
    "German": {
        "phrase": "frische Bergluft",
        "sentences": [
            "Die Bibliothek öffnet jeden Morgen um neun Uhr, außer sonntags.",
            "Außer am Sonntag öffnen sich die Türen der Bücherei täglich um neun.",
            "Das Museum schließt an Feiertagen im Winter früher als sonst.",
        ],
        "passage": "Honigbienen teilen den Ort einer Futterquelle durch einen Schwänzeltanz mit. Der Winkel des "
        "Tanzes zeigt die Richtung relativ zur Sonne, seine Dauer verrät die Entfernung zu den Blüten.",
        "query": "warum tanzen Bienen",
        "labels": ["Sport", "Politik"],
    },
    "French": {
        "phrase": "l'air frais de la montagne",
        "sentences": [
            "La bibliothèque ouvre tous les matins à neuf heures, sauf le dimanche.",
            "Sauf le dimanche, les portes de la médiathèque s'ouvrent chaque jour à neuf heures.",
            "Le musée ferme plus tôt les jours fériés pendant l'hiver.",
        ],
        "passage": "Les abeilles indiquent l'emplacement de la nourriture grâce à une danse frétillante. L'angle "
        "de la danse donne la direction par rapport au soleil, et sa durée indique la distance des fleurs.",
        "query": "pourquoi les abeilles dansent",
        "labels": ["sport", "politique"],
    },
    "Spanish": {
        "phrase": "aire fresco de montaña",
        "sentences": [
            "La biblioteca abre todas las mañanas a las nueve, excepto los domingos.",
            "Salvo el domingo, las puertas de la biblioteca se abren cada día a las nueve.",
            "El museo cierra temprano los días festivos durante el invierno.",
        ],
        "passage": "Las abejas comunican la ubicación del alimento mediante una danza. El ángulo de la danza "
        "indica la dirección respecto al sol y su duración señala la distancia hasta las flores.",
        "query": "por qué bailan las abejas",
        "labels": ["deportes", "política"],
    },
    "Portuguese": {
        "phrase": "ar fresco da montanha",
        "sentences": [
            "A biblioteca abre todas as manhãs às nove horas, exceto aos domingos.",
            "Menos no domingo, as portas da biblioteca abrem todos os dias às nove.",
            "O museu fecha mais cedo nos feriados durante o inverno.",
        ],
        "passage": "As abelhas comunicam a localização do alimento por meio de uma dança. O ângulo da dança "
        "mostra a direção em relação ao sol, e a sua duração indica a distância até as flores.",
        "query": "por que as abelhas dançam",
        "labels": ["esportes", "política"],
    },
    "Russian": {
        "phrase": "свежий горный воздух",
        "sentences": [
            "Библиотека открывается каждое утро в девять часов, кроме воскресенья.",
            "Кроме воскресенья, двери библиотеки открываются ежедневно в девять.",
            "Зимой в праздничные дни музей закрывается раньше обычного.",
        ],
        "passage": "Пчёлы сообщают друг другу о месте, где есть пища, с помощью особого танца. Угол танца "
        "показывает направление относительно солнца, а его длительность говорит о расстоянии до цветов.",
        "query": "зачем пчёлы танцуют",
        "labels": ["спорт", "политика"],
    },
    "Chinese": {
        "phrase": "新鲜的山间空气",
        "sentences": [
            "图书馆每天早上九点开门，星期日除外。",
            "除了星期天，图书馆每天九点准时开放。",
            "冬天的节假日里，博物馆会提前关门。",
        ],
        "passage": "蜜蜂通过一种摇摆舞来告诉同伴食物的位置。舞蹈的角度表示相对于太阳的方向，而舞蹈持续的时间则说明花朵有多远。",
        "query": "蜜蜂为什么跳舞",
        "labels": ["体育", "政治"],
    },
    "Japanese": {
        "phrase": "山のさわやかな空気",
        "sentences": [
            "図書館は日曜日を除いて毎朝九時に開きます。",
            "日曜日以外は、図書館の扉が毎日九時に開きます。",
            "冬の祝日には、博物館はいつもより早く閉まります。",
        ],
        "passage": "ミツバチは尻振りダンスによって仲間に餌の場所を伝えます。ダンスの角度は太陽に対する方向を示し、"
        "その長さは花までの距離を表しています。",
        "query": "ミツバチはなぜ踊るのか",
        "labels": ["スポーツ", "政治"],
    },
    "Korean": {
        "phrase": "상쾌한 산 공기",
        "sentences": [
            "도서관은 일요일을 제외하고 매일 아침 아홉 시에 문을 엽니다.",
            "일요일만 빼면 도서관 문은 매일 아홉 시에 열립니다.",
            "겨울 공휴일에는 박물관이 평소보다 일찍 문을 닫습니다.",
        ],
        "passage": "꿀벌은 엉덩이춤을 통해 동료에게 먹이가 있는 곳을 알려 줍니다. 춤의 각도는 태양을 기준으로 한 "
        "방향을 나타내고, 춤의 길이는 꽃까지의 거리를 알려 줍니다.",
        "query": "꿀벌은 왜 춤을 출까",
        "labels": ["스포츠", "정치"],
    },
    "Arabic": {
        "phrase": "هواء الجبل النقي",
        "sentences": [
            "تفتح المكتبة أبوابها كل صباح في الساعة التاسعة ما عدا يوم الأحد.",
            "باستثناء يوم الأحد، تُفتح أبواب المكتبة يوميًا في التاسعة.",
            "يغلق المتحف مبكرًا في أيام العطل خلال فصل الشتاء.",
        ],
        "passage": "يخبر النحل بعضه بعضًا عن مكان الغذاء من خلال رقصة خاصة. وتدل زاوية الرقصة على الاتجاه "
        "بالنسبة إلى الشمس، بينما تدل مدتها على المسافة إلى الأزهار.",
        "query": "لماذا يرقص النحل",
        "labels": ["رياضة", "سياسة"],
    },
    "Hindi": {
        "phrase": "पहाड़ों की ताज़ी हवा",
        "sentences": [
            "पुस्तकालय रविवार को छोड़कर हर सुबह नौ बजे खुलता है।",
            "रविवार के अलावा पुस्तकालय के दरवाज़े रोज़ नौ बजे खुल जाते हैं।",
            "सर्दियों में छुट्टियों के दिन संग्रहालय जल्दी बंद हो जाता है।",
        ],
        "passage": "मधुमक्खियाँ एक खास नृत्य के ज़रिए अपने साथियों को भोजन की जगह बताती हैं। नृत्य का कोण "
        "सूरज के सापेक्ष दिशा बताता है और उसकी अवधि फूलों तक की दूरी बताती है।",
        "query": "मधुमक्खियाँ क्यों नाचती हैं",
        "labels": ["खेल", "राजनीति"],
    },
    "Turkish": {
        "phrase": "temiz dağ havası",
        "sentences": [
            "Kütüphane pazar günleri hariç her sabah saat dokuzda açılır.",
            "Pazar dışında kütüphanenin kapıları her gün dokuzda açılıyor.",
            "Müze kış aylarında resmi tatillerde daha erken kapanır.",
        ],
        "passage": "Bal arıları yiyeceğin yerini özel bir dansla birbirlerine anlatır. Dansın açısı güneşe göre "
        "yönü gösterir, süresi ise çiçeklere olan uzaklığı belirtir.",
        "query": "arılar neden dans eder",
        "labels": ["spor", "siyaset"],
    },
    "Swahili": {
        "phrase": "hewa safi ya mlimani",
        "sentences": [
            "Maktaba hufunguliwa kila asubuhi saa tatu isipokuwa siku ya Jumapili.",
            "Isipokuwa Jumapili, milango ya maktaba hufunguliwa kila siku saa tatu.",
            "Jumba la makumbusho hufungwa mapema wakati wa sikukuu za majira ya baridi.",
        ],
        "passage": "Nyuki huwaonyesha wenzao mahali chakula kilipo kwa kucheza ngoma maalum. Pembe ya ngoma "
        "huonyesha mwelekeo kulingana na jua, na muda wake huonyesha umbali hadi kwenye maua.",
        "query": "kwa nini nyuki hucheza ngoma",
        "labels": ["michezo", "siasa"],
    },
    "Vietnamese": {
        "phrase": "không khí trong lành trên núi",
        "sentences": [
            "Thư viện mở cửa lúc chín giờ mỗi sáng, trừ chủ nhật.",
            "Trừ ngày chủ nhật, cửa thư viện mở hằng ngày lúc chín giờ.",
            "Bảo tàng đóng cửa sớm vào các ngày lễ trong mùa đông.",
        ],
        "passage": "Loài ong truyền đạt vị trí của thức ăn bằng một điệu nhảy đặc biệt. Góc của điệu nhảy cho "
        "biết hướng so với mặt trời, còn độ dài của nó cho biết khoảng cách đến những bông hoa.",
        "query": "tại sao ong lại nhảy múa",
        "labels": ["thể thao", "chính trị"],
    },
    "Thai": {
        "phrase": "อากาศบริสุทธิ์บนภูเขา",
        "sentences": [
            "ห้องสมุดเปิดทุกเช้าเวลาเก้าโมงยกเว้นวันอาทิตย์",
            "นอกจากวันอาทิตย์แล้ว ห้องสมุดจะเปิดประตูทุกวันตอนเก้าโมง",
            "พิพิธภัณฑ์ปิดเร็วกว่าปกติในวันหยุดนักขัตฤกษ์ช่วงฤดูหนาว",
        ],
        "passage": "ผึ้งบอกตำแหน่งของอาหารให้เพื่อนรู้ด้วยการเต้นรำแบบพิเศษ มุมของการเต้นบอกทิศทางเทียบกับดวงอาทิตย์ "
        "และความยาวของการเต้นบอกระยะทางไปยังดอกไม้",
        "query": "ทำไมผึ้งถึงเต้นรำ",
        "labels": ["กีฬา", "การเมือง"],
    },
}

DEFINITIONS = {
    "text_classification": "Classify a news headline or short article by its topic.",
    "text_retrieval": "Given a question about animal behaviour, retrieve a passage that answers it.",
    "short_text_matching": "Given a short description of a place, retrieve a sentence about the same place.",
    "long_text_matching": "Given an article about insects, retrieve an article on the same subject.",
}


def answer(task: str, language: str, unit: str = "sentence") -> dict:
    """A good answer of `task` in `language` (bitext: from English into it). Documents are as long as the
    tasks' checks ask with num_words=50 (text_retrieval) and 300 (long_text_matching)."""
    g = GOOD[language]
    s = g["sentences"]
    if task in ("monolingual_triplet", "bitext_retrieval"):
        texts = {
            "phrase": [g["phrase"], g["query"], " ".join(g["labels"])],
            "sentence": s,
            "passage": [g["passage"], " ".join(s[:2]), " ".join(s[1:])],
        }[unit]
        if task == "bitext_retrieval":
            return {"S1": answer("monolingual_triplet", "English", unit)["S1"], "S2": texts[0], "S3": texts[2]}
        return {"S1": texts[0], "S2": texts[1], "S3": texts[2]}
    if task == "text_classification":
        return {"input_text": s[2], "label": g["labels"][0], "misleading_label": g["labels"][1]}
    if task == "text_retrieval":
        return {
            "user_query": g["query"],
            "positive_document": g["passage"] + " " + s[0],
            "hard_negative_document": " ".join(s[1:] + [g["phrase"]] + s[:1]),
        }
    if task == "short_text_matching":
        return {"input": g["phrase"], "positive_document": s[0]}
    if task == "long_text_matching":
        return {"input": " ".join([g["passage"]] * 8), "positive_document": " ".join(s * 8)}
    if task == "brainstorm":
        return {"tasks": [DEFINITIONS[t] for t in sorted(DEFINITIONS)]}
    raise KeyError(task)
